"""Active holds for the holds console: filters, keyset pages and why a hold is stuck (SPEC §6).

A hold is *stuck* when it is still active but should not be:
- overdue: its expiry has passed and the expiry job has not swept it yet;
- its order is confirmed, shipped or cancelled (the hold should have been committed or released);
- its cart no longer holds that product;
- it is older than STUCK_TTL_MULTIPLE x HOLD_TTL_DEFAULT.
`stuck_condition` is the same rule as SQL, for counting (the overview's stuck tile).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, or_, select, tuple_
from sqlalchemy.orm import aliased, contains_eager, joinedload

from ..extensions import db
from ..models import CartItem, Location, Order, Product, Reservation
from . import cursor
from ..services.limits import MAX_CUSTOMER_ID, MAX_ID
from .params import whole_number_or_none
from .search import matching_product_ids

PAGE_SIZE = 50
EXPIRING_SOON = timedelta(minutes=5)
ENDED_ORDER_STATUSES = ("confirmed", "shipped", "cancelled")
OWNER_KINDS = ("order", "cart", "customer", "session")


def _too_old_before(now: datetime) -> datetime:
    config = current_app.config
    return now - timedelta(seconds=config["STUCK_TTL_MULTIPLE"] * config["HOLD_TTL_DEFAULT"])


def _order_ended():
    # The IS NOT NULL test first, so holds without an order skip the subquery.
    return and_(
        Reservation.order_id.is_not(None),
        exists().where(
            Order.id == Reservation.order_id, Order.status.in_(ENDED_ORDER_STATUSES)
        ).correlate(Reservation),
    )


def _cart_dropped():
    return and_(
        Reservation.cart_id.is_not(None),
        ~exists().where(
            CartItem.cart_id == Reservation.cart_id, CartItem.product_id == Reservation.product_id
        ).correlate(Reservation),
    )


def stuck_condition(now: datetime):
    """SQL: an active hold that is stuck by any of the four reasons above."""
    # Cheap column tests before the subqueries: OR stops at the first true one.
    return or_(
        Reservation.expires_at <= now,
        Reservation.created_at <= _too_old_before(now),
        _order_ended(),
        _cart_dropped(),
    )


@dataclass(frozen=True)
class OwnerFilter:
    """'cart 12', 'order:7', 'customer 42', 'session abc', or a bare id / session key."""

    kind: str | None
    value: str

    @classmethod
    def parse(cls, text: str) -> OwnerFilter | None:
        text = (text or "").strip()
        if not text:
            return None
        head, _, rest = text.replace(":", " ", 1).partition(" ")
        if head.lower() in OWNER_KINDS and rest.strip():
            return cls(head.lower(), rest.strip())
        return cls(None, text)

    def condition(self):
        number = whole_number_or_none(self.value)
        # A number past a column's range names no owner (and must not reach the database,
        # which would refuse to compare an int4 column with it).
        id32 = number if number and number <= MAX_ID else None
        by_kind = {
            "order": Reservation.order_id == id32 if id32 else None,
            "cart": Reservation.cart_id == id32 if id32 else None,
            "customer": (Reservation.customer_id == number
                         if number and number <= MAX_CUSTOMER_ID else None),
            "session": Reservation.session_key == self.value[:40],
        }
        if self.kind is not None:
            chosen = by_kind[self.kind]
            return chosen if chosen is not None else False
        # A bare value: any owner field it could be.
        return or_(*(c for c in by_kind.values() if c is not None))


@dataclass
class HoldFilters:
    sku: str = ""
    owner: str = ""
    show: str = "all"  # all | expiring | stuck
    location: str = ""  # a location's code: only the holds there

    def as_args(self) -> dict:
        return {k: v for k, v in
                {"sku": self.sku, "owner": self.owner, "filter": self.show,
                 "location": self.location}.items()
                if v and v != "all"}


@dataclass
class HoldRow:
    hold: Reservation
    order_status: str | None
    cart_dropped: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def stuck(self) -> bool:
        return bool(self.reasons)

    @property
    def extend_cap(self) -> datetime:
        """The latest expiry an extension may reach (HOLD_EXTEND_CAP after it was made)."""
        return self.hold.created_at + timedelta(seconds=current_app.config["HOLD_EXTEND_CAP"])


@dataclass
class HoldPage:
    rows: list[HoldRow]
    next_cursor: str | None
    unknown_sku: bool = False
    unknown_location: bool = False


# The console reads the order and the cart line through joins (index lookups per row under
# the page LIMIT); `stuck_condition`'s EXISTS form suits counting every active hold instead.
_line = aliased(CartItem)
_line_missing = and_(Reservation.cart_id.is_not(None), _line.id.is_(None))


def _rows_query(now: datetime):
    """Holds with what explains them, loaded in one statement (no N+1)."""
    return (
        select(Reservation, Order.status, _line_missing.label("cart_dropped"))
        .join(Reservation.product)
        .outerjoin(Order, Order.id == Reservation.order_id)
        .outerjoin(_line, and_(_line.cart_id == Reservation.cart_id,
                               _line.product_id == Reservation.product_id))
        .options(
            contains_eager(Reservation.product),
            joinedload(Reservation.location),
            joinedload(Reservation.created_by_api_client),
        )
    )


def _stuck_in_rows(now: datetime):
    """`stuck_condition` over the joins of `_rows_query`."""
    return or_(
        Reservation.expires_at <= now,
        Order.status.in_(ENDED_ORDER_STATUSES),
        _line_missing,
        Reservation.created_at <= _too_old_before(now),
    )


def _row(hold: Reservation, order_status: str | None, cart_dropped: bool, now: datetime
         ) -> HoldRow:
    row = HoldRow(hold, order_status, bool(cart_dropped))
    if hold.status != "active":
        return row
    if hold.expires_at <= now:
        row.reasons.append("overdue: expired but not yet swept by the expiry job")
    if order_status in ENDED_ORDER_STATUSES:
        row.reasons.append(f"its order {hold.order_id} is {order_status}")
    if cart_dropped:
        row.reasons.append(f"cart {hold.cart_id} no longer holds this product")
    if hold.created_at <= _too_old_before(now):
        config = current_app.config
        limit = config["STUCK_TTL_MULTIPLE"] * config["HOLD_TTL_DEFAULT"] // 60
        row.reasons.append(f"older than {limit} min ({config['STUCK_TTL_MULTIPLE']}x the hold time)")
    return row


def active_holds(filters: HoldFilters, now: datetime, after: str | None = None,
                 page_size: int = PAGE_SIZE) -> HoldPage:
    """One page of active holds, soonest expiry first, keyset-paginated on (expires_at, id)."""
    query = _rows_query(now).where(Reservation.status == "active")
    if filters.sku:
        # The SKU in any case, or products whose SKU, name, barcode or category has every word.
        products = matching_product_ids(filters.sku)
        if products is None:
            return HoldPage([], None, unknown_sku=True)
        query = query.where(Reservation.product_id.in_(products))
    if filters.location:
        place = db.session.scalars(select(Location.id).where(Location.code == filters.location)).first()
        if place is None:
            return HoldPage([], None, unknown_location=True)
        query = query.where(Reservation.location_id == place)
    owner = OwnerFilter.parse(filters.owner)
    if owner is not None:
        query = query.where(owner.condition())
    if filters.show == "expiring":
        query = query.where(Reservation.expires_at > now,
                            Reservation.expires_at <= now + EXPIRING_SOON)
    elif filters.show == "stuck":
        query = query.where(_stuck_in_rows(now))
    position = cursor.decode(after, datetime)
    if position is not None:
        when, hold_id = position
        # A row comparison, so the (expires_at, id) index starts right at the cursor; the
        # equivalent OR form reads and sorts every later hold (65 ms -> 0.4 ms at 10k active).
        query = query.where(tuple_(Reservation.expires_at, Reservation.id) > tuple_(when, hold_id))
    query = query.order_by(Reservation.expires_at, Reservation.id).limit(page_size + 1)
    found = db.session.execute(query).unique().all()
    rows = [_row(hold, status, dropped, now) for hold, status, dropped in found[:page_size]]
    if len(found) <= page_size:
        return HoldPage(rows, None)
    last = rows[-1].hold
    return HoldPage(rows, cursor.encode(last.expires_at, last.id))


def hold_row(hold_id: int, now: datetime) -> HoldRow | None:
    """One hold (any status) as the console shows it, for re-rendering its row."""
    found = db.session.execute(
        _rows_query(now)
        .where(Reservation.id == hold_id)
        .options(joinedload(Reservation.ended_by_staff), joinedload(Reservation.ended_by_api_client))
    ).unique().first()
    return _row(*found, now) if found else None


def skus_of(product_ids: set[int]) -> dict[int, str]:
    """Each product's SKU by id, in one statement (naming released holds)."""
    if not product_ids:
        return {}
    return dict(db.session.execute(
        select(Product.id, Product.sku).where(Product.id.in_(product_ids))).all())
