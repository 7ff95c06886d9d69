"""Search by words: one trigram index over what a word may match (SKU, name, barcode,
category), and SKUs found without regard to case.

- ix_products_search_trgm (PostgreSQL): GIN trigram index on the text `search_text()` in
  dashboard/queries/search.py builds; each word of a search is one ILIKE on it. A word has no
  space, so it can only match inside one of the fields, never across the separators.
- ix_products_sku_lower: lower(sku), for the exact, case-blind SKU lookups of the holds,
  activity and count-import filters (and short searches).
- ix_reservations_active_expires_at (PostgreSQL) also carries quantity, created_at, order_id,
  cart_id and product_id, so the overview's figures over active holds are an index-only scan.
- ix_products_alerting (PostgreSQL) also carries on_hand and reserved: the low and out
  counts of the overview and the stock tabs read the index alone.
- ix_orders_ended: the ids of confirmed, shipped and cancelled orders, so "its order ended"
  (a stuck reason) is an index-only probe.

Revision ID: 0007_search_words
Revises: 0006
Create Date: 2026-12-02 05:30:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0007_search_words'
down_revision = '0006'
branch_labels = None
depends_on = None

# Must read exactly as dashboard.queries.search.search_text() renders, or the planner
# cannot use the index.
SEARCH_TEXT = "(sku || ' ' || name || ' ' || coalesce(barcode, '') || ' ' || coalesce(category, ''))"
ACTIVE = sa.text("status = 'active'")
ENDED = sa.text("status IN ('confirmed', 'shipped', 'cancelled')")
ALERTING = sa.text("is_active AND on_hand - reserved <= low_stock_threshold")


def _alerting(include: list[str]):
    op.drop_index('ix_products_alerting', table_name='products', postgresql_where=ALERTING)
    op.create_index('ix_products_alerting', 'products', ['id'], postgresql_where=ALERTING,
                    postgresql_include=include)


def _active_by_expiry(include: list[str]):
    op.drop_index('ix_reservations_active_expires_at', table_name='reservations',
                  postgresql_where=ACTIVE)
    op.create_index('ix_reservations_active_expires_at', 'reservations', ['expires_at', 'id'],
                    postgresql_where=ACTIVE, postgresql_include=include)


def upgrade():
    with op.batch_alter_table('products', schema=None, recreate='never') as batch_op:
        batch_op.create_index('ix_products_sku_lower', [sa.text('lower(sku)')], unique=False)
    op.create_index('ix_orders_ended', 'orders', ['id'], postgresql_where=ENDED, sqlite_where=ENDED)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_products_search_trgm ON products USING gin ({SEARCH_TEXT} gin_trgm_ops)")
        _active_by_expiry(["quantity", "created_at", "order_id", "cart_id", "product_id"])
        _alerting(["on_hand", "reserved"])


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_products_search_trgm")
        _active_by_expiry([])
        _alerting([])
    op.drop_index('ix_orders_ended', table_name='orders', postgresql_where=ENDED, sqlite_where=ENDED)
    with op.batch_alter_table('products', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_products_sku_lower')
