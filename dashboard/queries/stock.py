"""The stock list (search, filters, sort, keyset pages) and the products its rows show."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import and_, case, func, select, tuple_
from sqlalchemy.orm import contains_eager

from ..extensions import db
from ..models import Location, Product, StockAlert, StockLevel
from ..services.alerts import UNRESOLVED
from . import cursor
from .search import clean, indexed, matches_words, plan_for_each_search, sku_is, words_of

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
LEVEL_SORTS = ("on_hand", "reserved", "available")  # at one location: its level's figures
ALERTING_TABS = ("low", "out")  # at one location: among its alerting levels
MAX_CATEGORY = 100
MAX_LOCATION_CODE = 20
# With all locations shown, up to this many active locations get an available column each;
# more would crowd the table (choose one location instead).
MAX_LOCATION_COLUMNS = 4
MAX_PRODUCT_ID = 2**31 - 1  # products.id is an INTEGER


@dataclass
class StockQuery:
    """What the staff member asked the list for; parsed defensively from the query string."""

    q: str = ""
    filter: str = "all"
    sort: str = "sku"
    dir: str = "asc"
    category: str = ""  # one department, exactly; "" = every product
    location: str = ""  # a location's code: its figures in place of the totals; "" = all

    @classmethod
    def from_args(cls, args) -> StockQuery:
        q = clean(args.get("q"))
        filter_ = args.get("filter", "all")
        sort = args.get("sort", "sku")
        direction = args.get("dir", "asc")
        category = "".join(c for c in args.get("category", "") if c.isprintable()).strip()
        location = "".join(c for c in args.get("location", "") if c.isprintable()).strip()
        return cls(
            q=q,
            filter=filter_ if filter_ in FILTERS else "all",
            sort=sort if sort in SORTS else "sku",
            dir=direction if direction in ("asc", "desc") else "asc",
            category=category[:MAX_CATEGORY],
            location=location[:MAX_LOCATION_CODE].upper(),
        )

    @property
    def words(self) -> list[str]:
        return words_of(self.q)

    @property
    def searchable(self) -> bool:
        """Whether `q` has a word of three letters or digits the trigram index can look up;
        shorter text (`ab`, `%%%`) can only be a whole SKU."""
        return indexed(self.words)

    def args(self, **changes) -> dict:
        """Query-string arguments for a link, without defaults (short, shareable URLs)."""
        values = {"q": self.q, "filter": self.filter, "sort": self.sort, "dir": self.dir,
                  "category": self.category, "location": self.location, **changes}
        defaults = {"q": "", "filter": "all", "sort": "sku", "dir": "asc", "category": "",
                    "location": ""}
        return {k: v for k, v in values.items() if v is not None and v != defaults.get(k)}


class AtLocation:
    """A product as one location's list shows it: its figures there in place of the totals
    (everything else is the product's)."""

    def __init__(self, product: Product, on_hand: int, reserved: int, location_code: str = ""):
        self.product, self.on_hand, self.reserved = product, on_hand, reserved
        self.location_code = location_code  # the row's panel changes stock there

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def __getattr__(self, name):
        return getattr(self.product, name)


@dataclass
class StockPage:
    products: list[Product | AtLocation]
    alerts: dict[int, StockAlert]
    next_cursor: str | None
    previous_cursor: str | None  # None on the first page
    counts: dict[str, int]  # products under each filter tab, for this search and category
    start: int = 1  # the position of the first row shown, 1-based
    filter: str = "all"
    # All locations with a few of them: each row's available units at each of `columns`.
    columns: list[Location] = field(default_factory=list)
    available_at: dict[int, dict[int, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.counts[self.filter]

    @property
    def end(self) -> int:
        return self.start + len(self.products) - 1


def _figures(location_id: int | None):
    """The columns the tabs and sorts read: the product's totals, or with a location its
    level there (the statement then joins stock_levels on (location_id, product_id))."""
    if location_id is None:
        return Product
    return SimpleNamespace(id=Product.id, sku=Product.sku, name=Product.name,
                           on_hand=StockLevel.on_hand, reserved=StockLevel.reserved,
                           low_stock_threshold=Product.low_stock_threshold,
                           is_active=Product.is_active)


def _at(statement, location_id: int | None):
    """`statement` (over products) joined to the products' levels at the location."""
    if location_id is None:
        return statement
    return statement.join(StockLevel, and_(StockLevel.location_id == location_id,
                                           StockLevel.product_id == Product.id))


def alerting(c=Product):
    """At or below the threshold (low or out), as services.alerts.level_of says, written the
    way the partial index ix_products_alerting is, so PostgreSQL reads only those rows.
    `c`: Product, or the columns of a subquery of products (the search's matches)."""
    return and_(c.is_active, c.on_hand - c.reserved <= c.low_stock_threshold)


def is_low(c=Product):
    return and_(alerting(c), c.on_hand - c.reserved > 0)


def is_out(c=Product):
    # threshold >= 0 (CHECK), so available <= 0 is always within the alerting rows.
    return and_(alerting(c), c.on_hand - c.reserved <= 0)


TABS = {"low": is_low, "out": is_out, "inactive": lambda c=Product: ~c.is_active}


def _decode(token: str | None, sort: str):
    return cursor.decode(token, str if sort in TEXT_SORTS else int)


def _cursor_of(product: Product, sort: str) -> str:
    value = product.available if sort == "available" else getattr(
        product, "low_stock_threshold" if sort == "threshold" else sort
    )
    return cursor.encode(value, product.id)


def _searched(statement, query: StockQuery):
    """`statement` narrowed to the products the search and category find."""
    if query.q and not query.searchable:
        statement = statement.where(sku_is(query.q))
    elif query.q:
        plan_for_each_search()
        statement = statement.where(matches_words(query.words))
    if query.category:
        statement = statement.where(Product.category == query.category)  # ix_products_category
    return statement


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def catalogue_counts(location_id: int | None = None) -> dict[str, int]:
    """How many products each filter tab holds, over the whole catalogue, from indexes: the
    primary key, ix_products_inactive, and the few rows of the partial ix_products_alerting.
    At one location, low and out are that location's: the rows of the partial
    ix_stock_levels_alerting there (each level carries its product's threshold and
    is_active, which the foreign key keeps equal to the product's)."""
    every = db.session.scalar(select(func.count()).select_from(Product)) or 0
    inactive = db.session.scalar(select(func.count()).select_from(Product).where(~Product.is_active)) or 0
    if location_id is None:
        c, where = Product, alerting()
    else:
        c = _level_figures()
        where = and_(StockLevel.location_id == location_id, alerting(c))
    available = c.on_hand - c.reserved
    low, out = db.session.execute(
        select(_count_if(available > 0), _count_if(available <= 0)).where(where)).one()
    return {"all": every, "low": low, "out": out, "inactive": inactive}


def _sort_columns(c, query: StockQuery, back: bool):
    column = c.on_hand - c.reserved if query.sort == "available" else getattr(
        c, "low_stock_threshold" if query.sort == "threshold" else query.sort)
    ascending = (query.dir == "asc") != back
    return column, ascending


def _ordered(statement, column, c, ascending: bool):
    if ascending:
        return statement.order_by(column.asc(), c.id.asc())
    return statement.order_by(column.desc(), c.id.desc())


def stock_page(query: StockQuery, after: str | None, before: str | None = None,
               start: int = 1, location: Location | None = None,
               columns: list[Location] | None = None) -> StockPage:
    """One keyset page: WHERE (sort, id) beyond the cursor ORDER BY sort, id LIMIT n+1 (no OFFSET),
    and how many products each filter tab holds.

    `after` pages forward from a row; `before` pages back from one (the same query the
    other way round, then reversed). `start` is where the page's first row stands, as the
    pager's links carry it (a keyset page does not know its offset).

    Without a search or category the page walks the sort column's index and the counts come
    from indexes. A search or category finds its matches once (a materialized CTE of the
    few columns the tabs and sorts need): the page is sorted from them and the tabs counted
    from them in the same statement. Walking the sort index instead, testing each row, reads
    the whole table when the matches sit late in that order ('TSH' SKUs; 250 ms at 100k).

    With a `location`, the figures, sorts and low/out tabs are that location's level. With
    `columns` (all locations, a few of them) one more statement reads each row's available
    units at each of them."""
    location_id = location.id if location is not None else None
    position = _decode(after, query.sort)
    back = _decode(before, query.sort) if position is None else None
    if query.q or query.category:
        rows, tab_counts = _found_page(query, position or back, back is not None, location_id)
    else:
        rows = _catalogue_page(query, position or back, back is not None, location_id)
        tab_counts = None
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if back is not None:
        rows.reverse()
        next_cursor = _cursor_of(rows[-1], query.sort) if rows else None
        previous_cursor = _cursor_of(rows[0], query.sort) if more else None
    else:
        next_cursor = _cursor_of(rows[-1], query.sort) if more else None
        previous_cursor = _cursor_of(rows[0], query.sort) if position is not None and rows else None
    if tab_counts is None:
        tab_counts = catalogue_counts(location_id)
    first_page = (position is None and back is None) or (back is not None and not more)
    start = 1 if first_page else max(1, start)
    start = max(1, min(start, tab_counts[query.filter] - len(rows) + 1))
    for row in rows if location is not None else ():
        row.location_code = location.code
    ids = [p.id for p in rows]
    columns = columns or []
    return StockPage(rows, unresolved_alerts(ids), next_cursor, previous_cursor,
                     tab_counts, start, query.filter, columns,
                     available_at(ids, [place.id for place in columns]) if columns else {})


def _rows(statement, location_id: int | None) -> list:
    """Products, or at a location each product with its level's figures there."""
    if location_id is None:
        return list(db.session.scalars(statement))
    return [AtLocation(product, on_hand, reserved)
            for product, on_hand, reserved, *_ in db.session.execute(statement)]


def _selected(location_id: int | None, *more):
    if location_id is None:
        return select(Product, *more)
    return _at(select(Product, StockLevel.on_hand, StockLevel.reserved, *more), location_id)


def _catalogue_page(query: StockQuery, edge, back: bool, location_id: int | None) -> list:
    c = _figures(location_id)
    column, ascending = _sort_columns(c, query, back)
    statement = _selected(location_id)
    if query.filter in TABS:
        statement = statement.where(TABS[query.filter](c))
    if edge is not None:
        beyond = tuple_(column, Product.id)
        statement = statement.where(beyond > tuple_(*edge) if ascending else beyond < tuple_(*edge))
    statement = _ordered(statement, column, Product, ascending)
    return _rows(statement.limit(PAGE_SIZE + 1), location_id)


def _matches(query: StockQuery):
    """The products the search and category find, as a materialized CTE of the few columns
    the tabs and sorts need; their figures are the totals (the caller joins a location's)."""
    return _searched(select(Product.id, Product.sku, Product.name, Product.on_hand,
                            Product.reserved, Product.low_stock_threshold, Product.is_active),
                     query).cte("found").prefix_with("MATERIALIZED")


def _level_figures():
    """A level's figures and its copy of the product's threshold and is_active, named as
    alerting() reads them."""
    return SimpleNamespace(on_hand=StockLevel.on_hand, reserved=StockLevel.reserved,
                           low_stock_threshold=StockLevel.product_threshold,
                           is_active=StockLevel.product_is_active)


def _levels_here(location_id: int, only_alerting: bool):
    """The location's levels as (id, on_hand, reserved) by product id; `only_alerting`: its
    low and out ones, ix_stock_levels_alerting's rows (a few thousand of 100k)."""
    levels = select(StockLevel.product_id.label("id"), StockLevel.on_hand,
                    StockLevel.reserved).where(StockLevel.location_id == location_id)
    if only_alerting:
        levels = levels.where(alerting(_level_figures()))
    return levels.subquery("here")


def _with_levels(found, levels):
    """The matches with the levels' figures in place of the totals (matches without such a
    level drop out)."""
    c = found.c
    return (select(c.id, c.sku, c.name, levels.c.on_hand, levels.c.reserved,
                   c.low_stock_threshold, c.is_active)
            .join(levels, levels.c.id == c.id))


def _tallies(found, location_id: int | None) -> list:
    """How many matches each tab holds (all, low, out, inactive), as scalar subqueries.

    At a location, low and out are the matches among its alerting levels: joining them to
    the location's few low and out levels, not to all 100k of its levels."""
    def tally(source, condition=None):
        counted = select(func.count()).select_from(source)
        return (counted if condition is None else counted.where(condition)).scalar_subquery()

    if location_id is None:
        flagged, c = found, found.c
    else:
        # A CTE read by both tallies: the location's alerting levels are scanned once.
        flagged = _with_levels(found, _levels_here(location_id, only_alerting=True)).cte("flagged")
        c = flagged.c
    return [tally(found), tally(flagged, is_low(c)), tally(flagged, is_out(c)),
            tally(found, ~found.c.is_active)]


def _found_page(query: StockQuery, edge, back: bool, location_id: int | None
                ) -> tuple[list, dict]:
    """A page of the matches and their tab counts, in one statement (two when the page is
    empty: other tabs may still hold matches).

    At a location the page's rows need the location's figures only to filter low or out
    (its alerting levels) or to sort by them (all its levels); sorted by SKU, name or
    threshold, the matches are paged by themselves and only the page's rows joined."""
    found = _matches(query)
    alerting_tab = query.filter in ALERTING_TABS
    if location_id is not None and (alerting_tab or query.sort in LEVEL_SORTS):
        levels = _levels_here(location_id, only_alerting=alerting_tab)
        c = _with_levels(found, levels).subquery("found_here").c
    else:  # at a location its totals are not read: neither the sort nor the filter needs them
        c = found.c
    column, ascending = _sort_columns(c, query, back)
    page_ids = select(c.id)
    if query.filter in TABS:
        page_ids = page_ids.where(TABS[query.filter](c))
    if edge is not None:
        beyond = tuple_(column, c.id)
        page_ids = page_ids.where(beyond > tuple_(*edge) if ascending else beyond < tuple_(*edge))
    page_ids = _ordered(page_ids, column, c, ascending).limit(PAGE_SIZE + 1).subquery()

    tallies = _tallies(found, location_id)
    product_column, _ = _sort_columns(_figures(location_id), query, back)
    statement = _ordered(
        _selected(location_id, *tallies).join(page_ids, page_ids.c.id == Product.id),
        product_column, Product, ascending)
    found_rows = db.session.execute(statement).all()
    every, low, out, inactive = (found_rows[0][-4:] if found_rows
                                 else db.session.execute(select(*tallies)).one())
    if location_id is None:
        rows = [row[0] for row in found_rows]
    else:
        rows = [AtLocation(row[0], row[1], row[2]) for row in found_rows]
    return rows, {"all": every, "low": low, "out": out, "inactive": inactive}


def location_columns(locations: list[Location]) -> list[Location]:
    """The locations the list of all locations gives a column each: none with one location
    (nothing to tell apart), none past MAX_LOCATION_COLUMNS (choose one instead)."""
    return locations if 1 < len(locations) <= MAX_LOCATION_COLUMNS else []


def available_at(product_ids: list[int], location_ids: list[int]) -> dict[int, dict[int, int]]:
    """Each product's available units at each of these locations, by product id then
    location id: one statement for a page's rows (the primary key of stock_levels)."""
    if not product_ids or not location_ids:
        return {}
    found: dict[int, dict[int, int]] = {}
    for product_id, location_id, available in db.session.execute(
            select(StockLevel.product_id, StockLevel.location_id,
                   StockLevel.on_hand - StockLevel.reserved)
            .where(StockLevel.product_id.in_(product_ids),
                   StockLevel.location_id.in_(location_ids))):
        found.setdefault(product_id, {})[location_id] = available
    return found


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


def several_locations() -> bool:
    """Whether the shop keeps stock at more than one open location (else pages leave the
    location unsaid, as before locations existed)."""
    return db.session.scalar(
        select(func.count()).select_from(Location).where(Location.is_active)) > 1


def level_at(product_id: int, location_id: int) -> StockLevel:
    """The product's level at the location as the database has it now."""
    return db.session.scalars(
        select(StockLevel).where(StockLevel.product_id == product_id,
                                 StockLevel.location_id == location_id)
        .execution_options(populate_existing=True)).one()


def levels_of(product_id: int) -> list[StockLevel]:
    """The product's levels at the open locations, in allocation order (with their location)."""
    return list(db.session.scalars(
        select(StockLevel).join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.product_id == product_id, Location.is_active)
        .order_by(Location.priority, Location.id)
        .options(contains_eager(StockLevel.location))
        .execution_options(populate_existing=True)))


def product_by_id(product_id: int) -> Product | None:
    """The product with this id; None also for ids no INTEGER column can hold."""
    return db.session.get(Product, product_id) if 0 < product_id <= MAX_PRODUCT_ID else None


def reread_product(product_id: int) -> Product:
    """The product as the database has it now, not as this session last saw it (after a
    refused change the session's copy may hold figures that were never committed)."""
    return db.session.scalars(
        select(Product).where(Product.id == product_id).execution_options(populate_existing=True)
    ).one()
