"""Indexes for two pages that sorted or scanned (issue 12).

- Alerts by severity: `ix_stock_alerts_status_kind_opened_at_id` is the open and
  acknowledged tabs' order (kind, opened_at, id, all descending) within a status, so a page
  is an index range of 51 rows instead of a sort of every alert in the tab.
- One location's low and out tabs: a level is low or out by the product's threshold and
  whether the product is sold, a predicate across two tables that no index could hold, so
  the counts read every level at the location. Each level now carries the two as
  `product_threshold` and `product_is_active`, kept equal to the product's by a foreign key
  (product_id, product_threshold, product_is_active) -> products (id, low_stock_threshold,
  is_active) ON UPDATE CASCADE: the database itself moves the copy when the product
  changes, and refuses a level whose copy differs. It replaces the plain product_id key
  (same name, the same ON DELETE CASCADE) and needs a unique index on the three product
  columns. The partial `ix_stock_levels_alerting` then holds only the low and out levels, by
  (location, product), with their figures on PostgreSQL: counted and joined to a search's
  matches from the index alone (28k of a location's 100k levels counted in 3.7 ms, not
  20 ms through the heap).

SQLite rebuilds stock_levels for the new key (nothing references stock_levels); the
products index is an index, not a constraint, so products is not rebuilt.

Revision ID: 0010_page_indexes
Revises: 0009_locations
Create Date: 2026-12-03 11:30:00

"""
import warnings
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0010_page_indexes'
down_revision = '0009_locations'
branch_labels = None
depends_on = None

ALERTING = 'product_is_active AND on_hand - reserved <= product_threshold'
PRODUCT_KEY = 'fk_stock_levels_product_id_products'


def upgrade():
    op.create_index('ix_stock_alerts_status_kind_opened_at_id', 'stock_alerts',
                    ['status', 'kind', 'opened_at', 'id'])
    op.create_index('uq_products_id_threshold_active', 'products',
                    ['id', 'low_stock_threshold', 'is_active'], unique=True)
    op.add_column('stock_levels', sa.Column('product_threshold', sa.Integer(), nullable=True))
    op.add_column('stock_levels', sa.Column('product_is_active', sa.Boolean(), nullable=True))
    op.execute(
        'UPDATE stock_levels SET'
        ' product_threshold = (SELECT low_stock_threshold FROM products'
        '                      WHERE products.id = stock_levels.product_id),'
        ' product_is_active = (SELECT is_active FROM products'
        '                      WHERE products.id = stock_levels.product_id)')
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('stock_levels', 'product_threshold', nullable=False)
        op.alter_column('stock_levels', 'product_is_active', nullable=False)
        op.drop_constraint(PRODUCT_KEY, 'stock_levels', type_='foreignkey')
        op.create_foreign_key(PRODUCT_KEY, 'stock_levels', 'products',
                              ['product_id', 'product_threshold', 'product_is_active'],
                              ['id', 'low_stock_threshold', 'is_active'],
                              ondelete='CASCADE', onupdate='CASCADE')
    else:
        with _rebuilt_levels() as batch_op:
            batch_op.alter_column('product_threshold', existing_type=sa.Integer(),
                                  nullable=False)
            batch_op.alter_column('product_is_active', existing_type=sa.Boolean(),
                                  nullable=False)
            batch_op.drop_constraint(PRODUCT_KEY, type_='foreignkey')
            batch_op.create_foreign_key(PRODUCT_KEY, 'products',
                                        ['product_id', 'product_threshold', 'product_is_active'],
                                        ['id', 'low_stock_threshold', 'is_active'],
                                        ondelete='CASCADE', onupdate='CASCADE')
    op.create_index('ix_stock_levels_alerting', 'stock_levels', ['location_id', 'product_id'],
                    postgresql_where=sa.text(ALERTING), sqlite_where=sa.text(ALERTING),
                    postgresql_include=['on_hand', 'reserved'])


def downgrade():
    op.drop_index('ix_stock_levels_alerting', table_name='stock_levels')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(PRODUCT_KEY, 'stock_levels', type_='foreignkey')
        op.create_foreign_key(PRODUCT_KEY, 'stock_levels', 'products', ['product_id'], ['id'],
                              ondelete='CASCADE')
        op.drop_column('stock_levels', 'product_is_active')
        op.drop_column('stock_levels', 'product_threshold')
    else:
        with _rebuilt_levels() as batch_op:
            batch_op.drop_constraint(PRODUCT_KEY, type_='foreignkey')
            batch_op.create_foreign_key(PRODUCT_KEY, 'products', ['product_id'], ['id'],
                                        ondelete='CASCADE')
            batch_op.drop_column('product_is_active')
            batch_op.drop_column('product_threshold')
    op.drop_index('uq_products_id_threshold_active', table_name='products')
    op.drop_index('ix_stock_alerts_status_kind_opened_at_id', table_name='stock_alerts')


@contextmanager
def _rebuilt_levels():
    """stock_levels rebuilt by SQLite batch mode. Reflecting it reflects products, whose
    expression index (lower(sku)) is not reflected and need not be: only stock_levels is
    rebuilt."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        with op.batch_alter_table('stock_levels', recreate='always') as batch_op:
            yield batch_op
