"""Search by words: one trigram index over what a word may match (SKU, name, barcode,
category), and SKUs found without regard to case.

- ix_products_search_trgm (PostgreSQL): GIN trigram index on the text `search_text()` in
  dashboard/queries/search.py builds; each word of a search is one ILIKE on it. A word has no
  space, so it can only match inside one of the fields, never across the separators.
- ix_products_sku_lower: lower(sku), for the exact, case-blind SKU lookups of the holds,
  activity and count-import filters (and short searches).

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


def upgrade():
    with op.batch_alter_table('products', schema=None, recreate='never') as batch_op:
        batch_op.create_index('ix_products_sku_lower', [sa.text('lower(sku)')], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_products_search_trgm ON products USING gin ({SEARCH_TEXT} gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_products_search_trgm")
    with op.batch_alter_table('products', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_products_sku_lower')
