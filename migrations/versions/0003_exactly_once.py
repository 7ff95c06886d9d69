"""Exactly once: staff submits remembered by their one-time token; no stuck API keys.

`submissions` holds each staff form submit that took effect (token hash, who, when, the
answer), inserted in the same transaction as the effect. Idempotency-Key rows are now
claimed and answered in one transaction, so rows left "in progress" (no status) by the old
two-step protocol are deleted: their key is free again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:30:00

"""
from alembic import op
import sqlalchemy as sa

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('submissions',
    sa.Column('id', BigId, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('level', sa.String(length=10), nullable=True),
    sa.Column('location', sa.String(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_submissions_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_submissions_token_hash'))
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_created_at', ['created_at'], unique=False)
    op.execute("DELETE FROM idempotency_keys WHERE status_code IS NULL")


def downgrade():
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_created_at')
    op.drop_table('submissions')
