"""Drop reservations.idempotency_key: no caller used the service-level key.

The storefront's retries are answered by the API's own per-client keys (the
`idempotency_keys` table); this column and its unique index only ever held NULLs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    # In place on SQLite too (ALTER TABLE ... DROP COLUMN, SQLite 3.35+): batch mode's usual
    # rebuild drops `reservations`, which stock_movements' foreign key refuses once holds
    # have ledger lines.
    with op.batch_alter_table('reservations', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('uq_reservations_idempotency_key',
                            postgresql_where=sa.text('idempotency_key IS NOT NULL'),
                            sqlite_where=sa.text('idempotency_key IS NOT NULL'))
        batch_op.drop_column('idempotency_key')


def downgrade():
    with op.batch_alter_table('reservations', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=255), nullable=True))
        batch_op.create_index('uq_reservations_idempotency_key', ['idempotency_key'], unique=True,
                              postgresql_where=sa.text('idempotency_key IS NOT NULL'),
                              sqlite_where=sa.text('idempotency_key IS NOT NULL'))
