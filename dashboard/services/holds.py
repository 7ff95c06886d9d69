"""Holds (reservations): reserve, release, extend, commit, expire; orders that own holds.

Lock order everywhere (SPEC §3): reservations by id, then products by id, then alerts.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from ..extensions import db
from ..models import Cart, Order, Product, Reservation
from . import limits
from .actor import SYSTEM, Actor
from .alerts import AlertChanges, evaluate_all, evaluate_product, level_of
from .errors import (
    ExtendBeyondCap,
    InactiveProduct,
    InsufficientStock,
    InvalidInput,
    NotFound,
    OrderNotCovered,
    OrderWrongState,
    ReservationNotActive,
    UnknownProduct,
)
from .ledger import Move, apply_deltas, lock_products, record, transaction


@dataclass(frozen=True)
class Owner:
    """Who a hold is for, in the storefront's terms; at least one field is set."""

    session_key: str | None = None
    customer_id: int | None = None
    cart_id: int | None = None
    order_id: int | None = None

    def describe(self) -> str:
        parts = []
        if self.order_id is not None:
            parts.append(f"order {self.order_id}")
        if self.cart_id is not None:
            parts.append(f"cart {self.cart_id}")
        if self.customer_id is not None:
            parts.append(f"customer {self.customer_id}")
        if self.session_key is not None:
            parts.append(f"session {self.session_key}")
        return ", ".join(parts)


def checked_owner(owner: Owner | None) -> Owner:
    """The owner with its ids as ints, or a refusal naming the bad field."""
    if not isinstance(owner, Owner) or not any(
        v is not None for v in (owner.session_key, owner.customer_id, owner.cart_id, owner.order_id)
    ):
        raise InvalidInput(
            "a hold needs an owner: session_key, customer_id, cart_id or order_id", field="owner"
        )
    if owner.session_key is not None:
        if not isinstance(owner.session_key, str) or not owner.session_key.strip():
            raise InvalidInput("session_key must be non-empty text", field="session_key")
        if len(owner.session_key) > limits.MAX_SESSION_KEY:
            raise InvalidInput(
                f"session_key must be at most {limits.MAX_SESSION_KEY} characters",
                field="session_key",
            )
        limits.no_nul(owner.session_key, "session_key")
    if owner.customer_id is not None:
        owner = replace(owner, customer_id=limits.whole_number(
            owner.customer_id, "customer_id", 1, limits.MAX_CUSTOMER_ID))
    if owner.cart_id is not None:
        owner = replace(owner, cart_id=limits.whole_number(owner.cart_id, "cart_id", 1, 2**31 - 1))
        if db.session.get(Cart, owner.cart_id) is None:
            raise InvalidInput(f"cart {owner.cart_id} does not exist", field="cart_id")
    if owner.order_id is not None:
        owner = replace(owner, order_id=limits.whole_number(
            owner.order_id, "order_id", 1, 2**31 - 1))
        if db.session.get(Order, owner.order_id) is None:
            raise InvalidInput(f"order {owner.order_id} does not exist", field="order_id")
    return owner


def _idempotency_key(key) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= limits.MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"an idempotency key must be 1 to {limits.MAX_IDEMPOTENCY_KEY} characters",
            field="idempotency_key",
        )
    return limits.no_nul(key, "idempotency_key")


def find_product(product: Product | str | int) -> Product:
    """A product by object, SKU or id; unknown -> UnknownProduct."""
    if isinstance(product, Product):
        return product
    if isinstance(product, str):
        # A NUL can be in no SKU (and PostgreSQL refuses it as a parameter).
        found = None if "\x00" in product else db.session.scalars(
            select(Product).where(Product.sku == product.strip())).first()
        label = f"SKU {product!r}"
    elif isinstance(product, int) and not isinstance(product, bool):
        found = db.session.get(Product, product) if 0 < product < 2**31 else None
        label = f"product {product}"
    else:
        raise InvalidInput("sku must be text", field="sku")
    if found is None:
        raise UnknownProduct(f"no product with {label}")
    return found


def sellable_product(product: Product | str | int) -> Product:
    found = find_product(product)
    if not found.is_active:
        raise InactiveProduct(f"{found.sku} is inactive and cannot be reserved")
    return found


def _take_statement(key):
    return (
        update(Product)
        .where(key, Product.is_active,
               Product.on_hand - Product.reserved >= bindparam("quantity"))
        .values(reserved=Product.reserved + bindparam("quantity"),
                updated_at=bindparam("now", type_=Product.updated_at.type))
        .returning(
            Product.id, Product.on_hand, Product.reserved, Product.low_stock_threshold,
            Product.is_active, Product.alert_muted,
        )
    )


# Built once: on the hot path, building a statement costs more Python than running it.
_TAKE_BY_ID = _take_statement(Product.id == bindparam("key"))
_TAKE_BY_SKU = _take_statement(Product.sku == bindparam("key"))
_INSERT_HOLD = insert(Reservation.__table__).returning(Reservation.__table__.c.id)


def _take(quantity: int, now: datetime, product_id: int | None = None,
          sku: str | None = None):
    """The one conditional UPDATE that makes overselling impossible (SPEC §3).

    By id, or by SKU so the storefront's usual call finds and holds in one round trip.
    """
    statement = _TAKE_BY_ID if product_id is not None else _TAKE_BY_SKU
    key = product_id if product_id is not None else sku
    # Straight to the connection: no ORM object is involved.
    return db.session.connection().execute(
        statement, {"key": key, "quantity": quantity, "now": now}
    ).first()


def _evaluate(after, now: datetime) -> None:
    product_id, on_hand, reserved, threshold, is_active, muted = after
    # A hold only lowers `available`: a product still above its threshold was above it
    # before too, so it has no alert to raise or change (unless muted, to re-arm it).
    # Changes made outside the app are caught by the scheduled evaluation.
    if muted or level_of(on_hand - reserved, threshold, is_active) is not None:
        evaluate_product(product_id, on_hand, reserved, threshold, is_active, muted, now)


@transaction
def reserve(
    product: Product | str | int,
    quantity: int,
    owner: Owner,
    ttl_seconds: int | None = None,
    *,
    actor: Actor = SYSTEM,
    now: datetime,
    idempotency_key: str | None = None,
) -> Reservation:
    """Hold `quantity` units for `owner` until now + ttl, or refuse with what is available."""
    quantity = limits.whole_number(quantity, "quantity", 1, limits.MAX_HOLD_QUANTITY)
    ttl = limits.ttl_seconds(ttl_seconds)
    owner = checked_owner(owner)
    idempotency_key = _idempotency_key(idempotency_key)
    after = None
    by_sku = isinstance(product, str) and "\x00" not in product and idempotency_key is None
    if by_sku:
        after = _take(quantity, now, sku=product.strip())
    if after is None:
        # Not taken (yet): say why it is unknown or inactive, or try lazy expiry.
        found = sellable_product(product)
        if idempotency_key is not None:
            earlier = _earlier_hold(idempotency_key, found.id, quantity)
            if earlier is not None:
                return earlier
        if not by_sku:
            after = _take(quantity, now, product_id=found.id)
    if after is None:
        # Lazy expiry: overdue holds of this product give their stock back before we refuse.
        if _expire(_overdue(now).where(Reservation.product_id == found.id), now).holds:
            after = _take(quantity, now, product_id=found.id)
    if after is None:
        available = db.session.execute(
            select(Product.on_hand - Product.reserved, Product.is_active).where(
                Product.id == found.id
            )
        ).one()
        db.session.commit()  # keep the lazy expiry; the refusal itself changes nothing
        if not available.is_active:
            raise InactiveProduct(f"{found.sku} is inactive and cannot be reserved")
        raise InsufficientStock(
            f"only {available[0]} available of {found.sku}; {quantity} requested",
            available=available[0],
            sku=found.sku,
        )

    product_id = after[0]
    values = dict(
        product_id=product_id, quantity=quantity, status="active", created_at=now,
        expires_at=now + timedelta(seconds=ttl), created_by_api_client_id=actor.api_client_id,
        session_key=owner.session_key, customer_id=owner.customer_id, cart_id=owner.cart_id,
        order_id=owner.order_id, idempotency_key=idempotency_key,
    )
    try:
        # A Core INSERT ... RETURNING id, then the object we already know is attached to the
        # session as persistent: no unit-of-work flush, no ORM result processing, no re-read.
        hold = Reservation(id=db.session.connection().execute(_INSERT_HOLD, values).scalar_one(),
                           ended_at=None, ended_by_staff_id=None, ended_by_api_client_id=None,
                           end_reason=None, **values)
        make_transient_to_detached(hold)
        db.session.add(hold)
    except IntegrityError:
        # The same idempotency key won a race in another transaction: answer with its hold.
        db.session.rollback()
        earlier = _earlier_hold(idempotency_key, product_id, quantity) if idempotency_key else None
        if earlier is None:
            raise
        return earlier
    record(
        [Move(product_id, "reserve", reserved_delta=quantity, reservation_id=hold.id,
              order_id=owner.order_id, reason=f"held for {owner.describe()}",
              on_hand_after=after[1], reserved_after=after[2])],
        actor, now,
    )
    _evaluate(after, now)
    return hold


def _earlier_hold(key: str, product_id: int, quantity: int) -> Reservation | None:
    earlier = db.session.scalars(
        select(Reservation).where(Reservation.idempotency_key == key)
    ).first()
    if earlier is not None and (earlier.product_id, earlier.quantity) != (product_id, quantity):
        raise InvalidInput(
            "this idempotency key was already used for a different hold", field="idempotency_key"
        )
    return earlier


@transaction
def reserve_cart(
    cart_id: int, ttl_seconds: int | None = None, *, actor: Actor = SYSTEM, now: datetime
) -> list[Reservation]:
    """Hold every item of a cart, or nothing; refusals name each short SKU."""
    ttl = limits.ttl_seconds(ttl_seconds)
    cart_id = limits.whole_number(cart_id, "cart_id", 1, 2**31 - 1)
    cart = db.session.get(Cart, cart_id)
    if cart is None:
        raise NotFound(f"cart {cart_id} does not exist")
    items = sorted(cart.items, key=lambda item: item.product_id)
    if not items:
        raise InvalidInput(f"cart {cart_id} is empty", field="cart_id")
    product_ids = [item.product_id for item in items]
    # Reservations before products (the lock order): give back overdue stock first.
    _expire(_overdue(now).where(Reservation.product_id.in_(product_ids)), now)
    products = lock_products(product_ids)

    short = []
    for item in items:
        product = products[item.product_id]
        if not product.is_active or product.available < item.quantity:
            short.append(
                {"sku": product.sku, "requested": item.quantity,
                 "available": product.available if product.is_active else 0}
            )
    if short:
        names = ", ".join(f"{s['sku']} (only {s['available']} available)" for s in short)
        raise InsufficientStock(f"cart {cart_id} cannot be held: {names}", short=short)

    owner = Owner(cart_id=cart.id, customer_id=cart.customer_id, session_key=cart.session_key)
    holds = [
        Reservation(
            product_id=item.product_id, quantity=item.quantity, status="active",
            created_at=now, expires_at=now + timedelta(seconds=ttl),
            created_by_api_client_id=actor.api_client_id, cart_id=cart.id,
            customer_id=cart.customer_id, session_key=cart.session_key,
        )
        for item in items
    ]
    db.session.add_all(holds)
    db.session.flush()
    moves = [
        Move(h.product_id, "reserve", reserved_delta=h.quantity, reservation_id=h.id,
             reason=f"held for {owner.describe()}")
        for h in holds
    ]
    apply_deltas(moves, actor, now)
    evaluate_all(product_ids, now)
    return holds


def _active_hold(reservation_id: int) -> Reservation:
    """The hold, locked; refuses with who ended it and when if it is not active."""
    reservation_id = limits.whole_number(reservation_id, "reservation_id", 1, 2**63 - 1)
    hold = db.session.scalars(
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if hold is None:
        raise NotFound(f"hold {reservation_id} does not exist")
    if hold.status != "active":
        raise not_active(hold)
    return hold


def not_active(hold: Reservation) -> ReservationNotActive:
    who = hold.ended_by_name
    when = hold.ended_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return ReservationNotActive(
        f"hold {hold.id} was already {hold.status} by {who} at {when}",
        status=hold.status, ended_at=hold.ended_at, ended_by=who,
    )


def _end(holds: list[Reservation], status: str, kind: str, reason: str, actor: Actor,
         now: datetime, consume: bool = False) -> None:
    """End locked active holds: mark them, move the counters, write the ledger, evaluate."""
    for hold in holds:
        hold.status, hold.ended_at, hold.end_reason = status, now, reason
        hold.ended_by_staff_id = actor.staff_id
        hold.ended_by_api_client_id = actor.api_client_id
    db.session.flush()
    moves = [
        Move(h.product_id, kind, reserved_delta=-h.quantity,
             on_hand_delta=-h.quantity if consume else 0,
             reservation_id=h.id, order_id=h.order_id, reason=reason)
        for h in sorted(holds, key=lambda h: h.id)
    ]
    apply_deltas(moves, actor, now)
    evaluate_all(sorted({h.product_id for h in holds}), now)


@transaction
def release(reservation_id: int, *, actor: Actor, reason: str, now: datetime) -> Reservation:
    """Give a hold's units back. Releasing an ended hold changes nothing and says why."""
    reason = limits.reason_text(reason)
    hold = _active_hold(reservation_id)
    _end([hold], "released", "release", reason, actor, now)
    return hold


@dataclass
class ReleaseResult:
    released: list[Reservation] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


@transaction
def release_many(
    reservation_ids: list[int], *, actor: Actor, reason: str, now: datetime
) -> ReleaseResult:
    """Release several holds at once; holds already ended are listed with why, not an error."""
    reason = limits.reason_text(reason)
    if not isinstance(reservation_ids, (list, tuple, set, frozenset)):
        raise InvalidInput("holds must be given as a list of ids", field="reservation_ids")
    ids = sorted({limits.whole_number(i, "reservation_id", 1, 2**63 - 1) for i in reservation_ids})
    if not ids:
        raise InvalidInput("select at least one hold", field="reservation_ids")
    holds = db.session.scalars(
        select(Reservation)
        .where(Reservation.id.in_(ids))
        .order_by(Reservation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    result = ReleaseResult()
    found = {h.id for h in holds}
    result.refused += [(i, f"hold {i} does not exist") for i in ids if i not in found]
    for hold in holds:
        if hold.status == "active":
            result.released.append(hold)
        else:
            result.refused.append((hold.id, str(not_active(hold))))
    if result.released:
        _end(result.released, "released", "release", reason, actor, now)
    return result


@transaction
def extend(
    reservation_id: int, until: datetime, *, actor: Actor, reason: str | None = None,
    now: datetime,
) -> Reservation:
    """Move a hold's expiry later, never past its creation + HOLD_EXTEND_CAP."""
    if not isinstance(until, datetime) or until.tzinfo is None:
        raise InvalidInput("the new expiry must be a date and time with a time zone",
                           field="until")
    limits.reason_text(reason, required=False)
    hold = _active_hold(reservation_id)
    cap = hold.created_at + timedelta(seconds=current_app.config["HOLD_EXTEND_CAP"])
    if until <= now or until <= hold.expires_at:
        raise InvalidInput("the new expiry must be later than the current one", field="until")
    if until > cap:
        raise ExtendBeyondCap(
            f"a hold can be kept at most until {cap:%H:%M:%S} UTC"
            f" ({current_app.config['HOLD_EXTEND_CAP'] // 60} min after it was made)",
            cap=cap.isoformat(),
        )
    if hold.expires_at <= now:
        raise InvalidInput("this hold is overdue and about to expire; reserve again", field="until")
    hold.expires_at = until
    db.session.flush()
    return hold


@transaction
def commit(reservation_id: int, *, actor: Actor, now: datetime, reason: str | None = None
           ) -> Reservation:
    """The held units leave the shop: on_hand and reserved both fall by the quantity."""
    reason = limits.reason_text(reason, required=False)
    hold = _active_hold(reservation_id)
    _end([hold], "committed", "commit", reason or "sold", actor, now, consume=True)
    return hold


def _order_for_update(order_id: int) -> Order:
    order_id = limits.whole_number(order_id, "order_id", 1, 2**31 - 1)
    order = db.session.scalars(
        select(Order).where(Order.id == order_id).with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    return order


def _order_holds(order_id: int) -> list[Reservation]:
    return db.session.scalars(
        select(Reservation)
        .where(Reservation.order_id == order_id, Reservation.status == "active")
        .order_by(Reservation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


@transaction
def confirm_order(order_id: int, *, actor: Actor, now: datetime) -> Order:
    """pending -> confirmed: the order's holds are committed; refuses if an item is not held."""
    order = _order_for_update(order_id)
    if order.status != "pending":
        raise OrderWrongState(f"order {order.id} is {order.status}, not pending", order.status)
    holds = _order_holds(order.id)
    held: dict[int, int] = defaultdict(int)
    for hold in holds:
        held[hold.product_id] += hold.quantity
    missing = [item.product.sku for item in order.items if held[item.product_id] < item.quantity]
    if missing:
        raise OrderNotCovered(
            f"order {order.id} is not fully held ({', '.join(missing)}); reserve again first",
            skus=missing,
        )
    if holds:
        _end(holds, "committed", "commit", f"order {order.id} confirmed", actor, now,
             consume=True)
    order.status, order.updated_at = "confirmed", now
    return order


@transaction
def cancel_order(order_id: int, *, actor: Actor, now: datetime, reason: str | None = None
                 ) -> Order:
    """pending -> cancelled releases its holds; confirmed -> cancelled returns committed units."""
    reason = limits.reason_text(reason, required=False)
    order = _order_for_update(order_id)
    if order.status not in ("pending", "confirmed"):
        raise OrderWrongState(
            f"order {order.id} is {order.status} and can no longer be cancelled", order.status
        )
    note = reason or f"order {order.id} cancelled"
    holds = _order_holds(order.id)
    if holds:
        _end(holds, "released", "release", note, actor, now)
    if order.status == "confirmed":
        committed = db.session.execute(
            select(Reservation.product_id, func.sum(Reservation.quantity))
            .where(Reservation.order_id == order.id, Reservation.status == "committed")
            .group_by(Reservation.product_id)
            .order_by(Reservation.product_id)
        ).all()
        moves = [
            Move(pid, "receive", on_hand_delta=qty, order_id=order.id,
                 reason=f"{note}: returned to stock")
            for pid, qty in committed
        ]
        apply_deltas(moves, actor, now)
        evaluate_all([pid for pid, _ in committed], now)
    order.status, order.updated_at = "cancelled", now
    return order


@dataclass
class ExpiryResult:
    holds: int = 0
    units: int = 0
    product_ids: set[int] = field(default_factory=set)
    alerts: AlertChanges = field(default_factory=AlertChanges)

    @property
    def products(self) -> int:
        """Distinct products that got units back (a product may be in several batches)."""
        return len(self.product_ids)

    def __iadd__(self, other: ExpiryResult) -> ExpiryResult:
        self.holds += other.holds
        self.units += other.units
        self.product_ids |= other.product_ids
        self.alerts += other.alerts
        return self

    def as_dict(self) -> dict:
        return {"holds_expired": self.holds, "units_returned": self.units,
                "products": self.products, **self.alerts.as_dict()}


def _overdue(now: datetime):
    return select(Reservation.id).where(
        Reservation.status == "active", Reservation.expires_at <= now
    )


def _expire(claim, now: datetime) -> ExpiryResult:
    """Expire the active holds the `claim` query selects, set-based, in the open transaction."""
    # A materialized CTE runs the claim once: inside `IN (subquery)` PostgreSQL may re-run
    # a `LIMIT n FOR UPDATE SKIP LOCKED` claim per row and end far more than one batch.
    claimed = claim.cte("claimed").prefix_with("MATERIALIZED")
    ended = db.session.execute(
        update(Reservation)
        .where(Reservation.id == claimed.c.id, Reservation.status == "active")
        .values(status="expired", ended_at=now, end_reason="expired: not completed in time")
        .returning(Reservation.id, Reservation.product_id, Reservation.quantity,
                   Reservation.order_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not ended:
        return ExpiryResult()
    ended.sort()
    moves = [
        Move(pid, "expire", reserved_delta=-qty, reservation_id=rid, order_id=oid,
             reason="hold expired")
        for rid, pid, qty, oid in ended
    ]
    apply_deltas(moves, SYSTEM, now)
    product_ids = sorted({m.product_id for m in moves})
    return ExpiryResult(
        holds=len(ended), units=sum(-m.reserved_delta for m in moves),
        product_ids=set(product_ids), alerts=evaluate_all(product_ids, now),
    )


def expire_due(now: datetime, batch: int = 2000, max_batches: int | None = None) -> ExpiryResult:
    """Expire every overdue hold, one committed batch at a time.

    Each batch claims holds with FOR UPDATE SKIP LOCKED (a hold being released right now
    is skipped, not waited for) and commits, so no product stays locked longer than one batch.
    """
    batch = limits.whole_number(batch, "batch", 1, 1_000_000)
    if max_batches is not None:
        max_batches = limits.whole_number(max_batches, "max_batches", 1, 2**31 - 1)
    total = ExpiryResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        claim = (
            _overdue(now).order_by(Reservation.id).limit(batch)
            .with_for_update(skip_locked=True)
        )
        try:
            result = _expire(claim, now)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        total += result
        batches += 1
        if result.holds < batch:
            break
    return total
