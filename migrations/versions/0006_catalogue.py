"""Catalogue fields on products: barcode (unique where set), category (indexed), supplier;
and the (updated_at, id) index the storefront's catalogue sync pages by.

Every existing row is kept; the new columns start empty (NULL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_HAS_BARCODE = sa.text('barcode IS NOT NULL')


def upgrade():
    # In place on SQLite too (no table rebuild: foreign keys point at products).
    with op.batch_alter_table('products', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('barcode', sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column('category', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('supplier', sa.String(length=200), nullable=True))
        batch_op.create_index('uq_products_barcode', ['barcode'], unique=True,
                              postgresql_where=_HAS_BARCODE, sqlite_where=_HAS_BARCODE)
        batch_op.create_index(batch_op.f('ix_products_category'), ['category'], unique=False)
        batch_op.create_index('ix_products_updated_at_id', ['updated_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('products', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_products_updated_at_id')
        batch_op.drop_index(batch_op.f('ix_products_category'))
        batch_op.drop_index('uq_products_barcode', postgresql_where=_HAS_BARCODE,
                            sqlite_where=_HAS_BARCODE)
        batch_op.drop_column('supplier')
        batch_op.drop_column('category')
        batch_op.drop_column('barcode')
