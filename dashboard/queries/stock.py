"""The stock list (search, filters, sort, keyset pages) and the products its rows show."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select, text, tuple_

from ..extensions import db
from ..models import Product, StockAlert
from ..services.alerts import UNRESOLVED
from . import cursor

PAGE_SIZE = 50
FILTERS = ("all", "low", "out", "inactive")
SORTS = {
    "sku": Product.sku,
    "name": Product.name,
    "on_hand": Product.on_hand,
    "reserved": Product.reserved,
    "available": Product.on_hand - Product.reserved,
    "threshold": Product.low_stock_threshold,
}
TEXT_SORTS = ("sku", "name")
MAX_QUERY = 100
MAX_CATEGORY = 100
# Trigram indexes need three characters; shorter text can only be a whole (short) SKU.
MIN_SEARCH = 3
MAX_PRODUCT_ID = 2**31 - 1  # products.id is an INTEGER


@dataclass
class StockQuery:
    """What the staff member asked the list for; parsed defensively from the query string."""

    q: str = ""
    filter: str = "all"
    sort: str = "sku"
    dir: str = "asc"
    category: str = ""  # one department, exactly; "" = every product

    @classmethod
    def from_args(cls, args) -> StockQuery:
        q = "".join(c for c in args.get("q", "") if c.isprintable()).strip()[:MAX_QUERY]
        filter_ = args.get("filter", "all")
        sort = args.get("sort", "sku")
        direction = args.get("dir", "asc")
        category = "".join(c for c in args.get("category", "") if c.isprintable()).strip()
        return cls(
            q=q,
            filter=filter_ if filter_ in FILTERS else "all",
            sort=sort if sort in SORTS else "sku",
            dir=direction if direction in ("asc", "desc") else "asc",
            category=category[:MAX_CATEGORY],
        )

    @property
    def searchable(self) -> bool:
        """Whether `q` has MIN_SEARCH letters or digits: fewer (`%%%`, `_%_`, `ab`) give the
        trigram indexes nothing to use, so the search would read every product."""
        return sum(c.isalnum() for c in self.q) >= MIN_SEARCH

    def args(self, **changes) -> dict:
        """Query-string arguments for a link, without defaults (short, shareable URLs)."""
        values = {"q": self.q, "filter": self.filter, "sort": self.sort, "dir": self.dir,
                  "category": self.category, **changes}
        defaults = {"q": "", "filter": "all", "sort": "sku", "dir": "asc", "category": ""}
        return {k: v for k, v in values.items() if v is not None and v != defaults.get(k)}


@dataclass
class StockPage:
    products: list[Product]
    alerts: dict[int, StockAlert]
    next_cursor: str | None
    previous_cursor: str | None  # None on the first page


def alerting():
    """At or below the threshold (low or out), as services.alerts.level_of says, written the
    way the partial index ix_products_alerting is, so PostgreSQL reads only those rows."""
    return and_(Product.is_active, Product.on_hand - Product.reserved <= Product.low_stock_threshold)


def is_low():
    return and_(alerting(), Product.on_hand - Product.reserved > 0)


def is_out():
    # threshold >= 0 (CHECK), so available <= 0 is always within the alerting rows.
    return and_(alerting(), Product.on_hand - Product.reserved <= 0)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _decode(token: str | None, sort: str):
    return cursor.decode(token, str if sort in TEXT_SORTS else int)


def _cursor_of(product: Product, sort: str) -> str:
    value = product.available if sort == "available" else getattr(
        product, "low_stock_threshold" if sort == "threshold" else sort
    )
    return cursor.encode(value, product.id)


def stock_page(query: StockQuery, after: str | None, before: str | None = None) -> StockPage:
    """One keyset page: WHERE (sort, id) beyond the cursor ORDER BY sort, id LIMIT n+1 (no OFFSET).

    `after` pages forward from a row; `before` pages back from one (the same query the
    other way round, then reversed)."""
    column = SORTS[query.sort]
    statement = select(Product)
    if query.q and not query.searchable:
        statement = statement.where(Product.sku.in_({query.q, query.q.upper()}))
    elif query.q:
        # ILIKE '%q%' is what the trigram indexes (ix_products_sku_trgm/name_trgm) serve. A
        # cached generic plan cannot see the pattern and walks the sort index instead (150 ms
        # at 100k products), so plan each search for its own pattern.
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        pattern = _like(query.q)
        statement = statement.where(
            or_(Product.sku.ilike(pattern, escape="\\"), Product.name.ilike(pattern, escape="\\"))
        )
    if query.category:
        statement = statement.where(Product.category == query.category)  # ix_products_category
    if query.filter == "low":
        statement = statement.where(is_low())
    elif query.filter == "out":
        statement = statement.where(is_out())
    elif query.filter == "inactive":
        statement = statement.where(~Product.is_active)
    position = _decode(after, query.sort)
    back = _decode(before, query.sort) if position is None else None
    ascending = (query.dir == "asc") != (back is not None)
    if position is not None or back is not None:
        beyond = tuple_(column, Product.id)
        edge = tuple_(*(position or back))
        statement = statement.where(beyond > edge if ascending else beyond < edge)
    order = column
    if query.q and query.searchable:
        # Sort the matches rather than walk the sort index testing every row: when they sit
        # late in that order ('TSH' SKUs, a rare word) the walk reads the whole table (250 ms
        # at 100k products, vs <= 30 ms via the trigram indexes). The no-op hides the index.
        order = column.concat("") if query.sort in TEXT_SORTS else column + 0
    if ascending:
        statement = statement.order_by(order.asc(), Product.id.asc())
    else:
        statement = statement.order_by(order.desc(), Product.id.desc())
    rows = list(db.session.scalars(statement.limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if back is not None:
        rows.reverse()
        next_cursor = _cursor_of(rows[-1], query.sort) if rows else None
        previous_cursor = _cursor_of(rows[0], query.sort) if more else None
    else:
        next_cursor = _cursor_of(rows[-1], query.sort) if more else None
        previous_cursor = _cursor_of(rows[0], query.sort) if position is not None and rows else None
    return StockPage(rows, unresolved_alerts([p.id for p in rows]), next_cursor, previous_cursor)


def unresolved_alerts(product_ids: list[int]) -> dict[int, StockAlert]:
    """Each product's open or acknowledged alert (at most one per product), by product id."""
    if not product_ids:
        return {}
    alerts = db.session.scalars(
        select(StockAlert).where(
            StockAlert.product_id.in_(product_ids), StockAlert.status.in_(UNRESOLVED)
        )
    )
    return {alert.product_id: alert for alert in alerts}


def unresolved_alert(product_id: int) -> StockAlert | None:
    return unresolved_alerts([product_id]).get(product_id)


def product_by_id(product_id: int) -> Product | None:
    """The product with this id; None also for ids no INTEGER column can hold."""
    return db.session.get(Product, product_id) if 0 < product_id <= MAX_PRODUCT_ID else None


def reread_product(product_id: int) -> Product:
    """The product as the database has it now, not as this session last saw it (after a
    refused change the session's copy may hold figures that were never committed)."""
    return db.session.scalars(
        select(Product).where(Product.id == product_id).execution_options(populate_existing=True)
    ).one()
