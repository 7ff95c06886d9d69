"""Storefront scope: carts and orders name the API client whose records they are, and a
client may be granted every storefront (`all_storefronts`); holds are found by creator.

Existing carts and orders get no client (only an all-storefronts client reaches them);
assign them with `UPDATE carts SET api_client_id = ...` when a shop has one storefront.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:45:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # In place on SQLite too (see 0002): rebuilding carts or orders would trip their
    # referencing foreign keys.
    with op.batch_alter_table('api_clients', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('all_storefronts', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in ('carts', 'orders'):
        if sqlite:  # SQLite adds a column's foreign key only inline
            op.execute(f'ALTER TABLE {table} ADD COLUMN api_client_id INTEGER'
                       f' CONSTRAINT fk_{table}_api_client_id_api_clients'
                       ' REFERENCES api_clients (id)')
        else:
            op.add_column(table, sa.Column(
                'api_client_id', sa.Integer(),
                sa.ForeignKey('api_clients.id', name=f'fk_{table}_api_client_id_api_clients'),
                nullable=True))
        op.create_index(f'ix_{table}_api_client_id', table, ['api_client_id'], unique=False)
    with op.batch_alter_table('reservations', schema=None, recreate='never') as batch_op:
        batch_op.create_index('ix_reservations_created_by_api_client_id',
                              ['created_by_api_client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('reservations', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_reservations_created_by_api_client_id')
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in ('orders', 'carts'):
        op.drop_index(f'ix_{table}_api_client_id', table)
        if sqlite:
            # SQLite cannot drop a column that is in a foreign key: rebuild the table with
            # foreign keys off (their rows are copied as they are).
            op.execute('PRAGMA foreign_keys=OFF')
            with op.batch_alter_table(table, schema=None, recreate='always') as batch_op:
                batch_op.drop_column('api_client_id')
            op.execute('PRAGMA foreign_keys=ON')
        else:
            op.drop_constraint(f'fk_{table}_api_client_id_api_clients', table, type_='foreignkey')
            op.drop_column(table, 'api_client_id')
    with op.batch_alter_table('api_clients', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('all_storefronts')
