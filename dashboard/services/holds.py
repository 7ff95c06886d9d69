"""Holds (reservations): reserve, reserve a whole cart, release, extend, commit.

A hold ends exactly once (I6): `end_holds` marks it, moves the counters through the ledger
and evaluates the alerts; ending an ended hold is refused with who ended it and when.
Lock order everywhere (SPEC §3): reservations by id, then products by id, then alerts.
Orders that own holds are in `orders`, the sweep of overdue holds in `expiry`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import make_transient_to_detached

from ..extensions import db
from ..models import Cart, Product, Reservation
from . import events, holds_pg, limits
from .actor import SYSTEM, Actor
from .alerts import evaluate_all, evaluate_product, level_of
from .errors import (
    ExtendBeyondCap,
    InactiveProduct,
    InsufficientStock,
    InvalidInput,
    NotFound,
    ReservationNotActive,
)
from .expiry import expire_claimed, overdue
from .holds_pg import StockChange
from .ledger import Move, apply_deltas, lock_products, record
from .owners import Owner, checked_owner
from .products import sellable_product
from .transaction import keep_so_far, transactional


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
          sku: str | None = None) -> StockChange | None:
    """The one conditional UPDATE that makes overselling impossible (SPEC §3).

    By id, or by SKU so the storefront's usual call finds and holds in one round trip.
    """
    statement = _TAKE_BY_ID if product_id is not None else _TAKE_BY_SKU
    key = product_id if product_id is not None else sku
    # Straight to the connection: no ORM object is involved.
    row = db.session.connection().execute(
        statement, {"key": key, "quantity": quantity, "now": now}
    ).first()
    if row is None:
        return None
    pid, on_hand, reserved, threshold, is_active, muted = row
    return StockChange(pid, on_hand, reserved - quantity, on_hand, reserved, threshold,
                       is_active, muted)


@transactional
def reserve(
    product: Product | str | int,
    quantity: int,
    owner: Owner,
    ttl_seconds: int | None = None,
    *,
    actor: Actor = SYSTEM,
    now: datetime,
) -> Reservation:
    """Hold `quantity` units for `owner` until now + ttl, or refuse with what is available.

    The fast path (a product whose units are free) is one statement on PostgreSQL (the take,
    the hold and its ledger line: `holds_pg`) and three on SQLite. bench/reserve.py holds it
    to the pace of that one statement under pgbench: add none.
    """
    quantity = limits.require_whole_number(quantity, "quantity", 1, limits.MAX_HOLD_QUANTITY)
    ttl = limits.ttl_seconds(ttl_seconds)
    owner = checked_owner(owner, actor)
    by_sku = isinstance(product, str) and "\x00" not in product
    by_id = (isinstance(product, int) and not isinstance(product, bool)
             and 0 < product <= limits.MAX_ID)
    reason = f"held for {owner.describe()}"
    in_one = db.session.connection().dialect.name == "postgresql"
    if in_one and (by_sku or by_id or isinstance(product, Product)):
        key = product.strip() if by_sku else product if by_id else product.id
        done = holds_pg.reserve(by_sku, key, quantity, owner, now + timedelta(seconds=ttl),
                                reason, actor, now)
        if done is not None:
            hold_id, change = done
            hold = _hold_object(hold_id, change.product_id, quantity, owner, ttl, actor, now)
            _changed_in_one_statement(change, now)
            return hold
        after, gave_back = _take_slowly(product, quantity, now, taken_tried=True)
    else:
        after = _take(quantity, now, sku=product.strip()) if by_sku else None
        gave_back = False
        if after is None:
            after, gave_back = _take_slowly(product, quantity, now, taken_tried=by_sku)
    hold = _insert_hold(after.product_id, quantity, owner, ttl, actor, now)
    record(
        [Move(hold.product_id, "reserve", reserved_delta=quantity, reservation_id=hold.id,
              order_id=owner.order_id, reason=reason,
              on_hand_after=after.on_hand, reserved_after=after.reserved)],
        actor, now,
    )
    if gave_back:  # the level may have moved either way since the transaction began
        evaluate_all([hold.product_id], now)
    else:
        _evaluate(after, now)
    return hold


def _take_slowly(product: Product | str | int, quantity: int, now: datetime, taken_tried: bool):
    """The slow path: say why the product cannot be held (unknown, inactive), take it by id,
    or give back its overdue holds first (lazy expiry); else refuse with what is available.

    Returns the taken row and whether overdue holds were given back (the caller then
    evaluates the product's alert once, for the net change)."""
    found = sellable_product(product)
    after = None if taken_tried else _take(quantity, now, product_id=found.id)
    if after is not None:
        return after, False
    # A hold another transaction is ending is skipped, never waited for: that one may be
    # waiting for this product (a release, the scheduler's sweep): a deadlock.
    lazily_expired = (overdue(now).where(Reservation.product_id == found.id)
                      .order_by(Reservation.id).with_for_update(skip_locked=True))
    gave_back = expire_claimed(lazily_expired, now, evaluate=False).holds > 0
    if gave_back:
        after = _take(quantity, now, product_id=found.id)
    if after is None:
        if gave_back:
            evaluate_all([found.id], now)
        available = db.session.execute(
            select(Product.on_hand - Product.reserved, Product.is_active).where(
                Product.id == found.id
            )
        ).one()
        keep_so_far()  # keep the lazy expiry; the refusal itself changes nothing
        if not available.is_active:
            raise InactiveProduct(f"{found.sku} is inactive and cannot be reserved")
        raise InsufficientStock(
            f"only {available[0]} available of {found.sku}; {quantity} requested",
            available=available[0],
            sku=found.sku,
        )
    return after, gave_back


def _insert_hold(product_id: int, quantity: int, owner: Owner, ttl: int, actor: Actor,
                 now: datetime) -> Reservation:
    # A Core INSERT ... RETURNING id, then the object we already know is attached to the
    # session as persistent: no unit-of-work flush, no ORM result processing, no re-read.
    hold_id = db.session.connection().execute(
        _INSERT_HOLD, _hold_values(product_id, quantity, owner, ttl, actor, now)).scalar_one()
    return _hold_object(hold_id, product_id, quantity, owner, ttl, actor, now)


def _hold_values(product_id: int, quantity: int, owner: Owner, ttl: int, actor: Actor,
                 now: datetime) -> dict:
    return dict(
        product_id=product_id, quantity=quantity, status="active", created_at=now,
        expires_at=now + timedelta(seconds=ttl), created_by_api_client_id=actor.api_client_id,
        session_key=owner.session_key, customer_id=owner.customer_id, cart_id=owner.cart_id,
        order_id=owner.order_id,
    )


def _hold_object(hold_id: int, product_id: int, quantity: int, owner: Owner, ttl: int,
                 actor: Actor, now: datetime) -> Reservation:
    """The hold just inserted, as a persistent object built from what we sent."""
    hold = Reservation(id=hold_id, ended_at=None, ended_by_staff_id=None,
                       ended_by_api_client_id=None, end_reason=None,
                       **_hold_values(product_id, quantity, owner, ttl, actor, now))
    make_transient_to_detached(hold)
    db.session.add(hold)
    return hold


def _changed_in_one_statement(change: StockChange, now: datetime) -> None:
    """What `ledger.record` does after a move (the zero-crossing event), which the one
    statement wrote its ledger line without, then the alert check."""
    events.available_changed(change.product_id, change.available_before, change.available, now)
    _evaluate(change, now)


def _evaluate(change: StockChange, now: datetime) -> None:
    """Evaluate the alert of one product a hold just changed, only if it can be wrong now.

    Above its threshold before and after (and not muted, which needs re-arming) a product
    has no alert to raise, change or resolve. Changes made outside the app are caught by
    the scheduled evaluation."""
    if (change.muted
            or level_of(change.available, change.threshold, change.is_active) is not None
            or level_of(change.available_before, change.threshold, change.is_active) is not None):
        evaluate_product(change.product_id, change.on_hand, change.reserved, change.threshold,
                         change.is_active, change.muted, now)


@transactional
def reserve_cart(
    cart_id: int, ttl_seconds: int | None = None, *, actor: Actor = SYSTEM, now: datetime
) -> list[Reservation]:
    """Hold every item of a cart, or nothing; refusals name each short SKU."""
    ttl = limits.ttl_seconds(ttl_seconds)
    cart_id = limits.require_whole_number(cart_id, "cart_id", 1, limits.MAX_ID)
    cart = db.session.get(Cart, cart_id)
    if cart is None or not actor.reaches(cart.api_client_id):
        raise NotFound(f"cart {cart_id} does not exist")
    items = sorted(cart.items, key=lambda item: item.product_id)
    if not items:
        raise InvalidInput(f"cart {cart_id} is empty", field="cart_id")
    product_ids = [item.product_id for item in items]
    # Reservations before products (the lock order): give back overdue stock first.
    # Alerts are evaluated once at the end, for the net change.
    expire_claimed(overdue(now).where(Reservation.product_id.in_(product_ids)), now,
                   evaluate=False)
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


def locked_holds(*where) -> list[Reservation]:
    """The holds matching `where`, locked in id order (the lock order), fresh from the database."""
    return db.session.scalars(
        select(Reservation)
        .where(*where)
        .order_by(Reservation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def _active_hold(reservation_id: int, actor: Actor) -> Reservation:
    """The hold, locked; refuses with who ended it and when if it is not active. Another
    storefront's hold does not exist, as far as this actor can tell."""
    reservation_id = limits.require_whole_number(
        reservation_id, "reservation_id", 1, limits.MAX_HOLD_ID)
    found = locked_holds(Reservation.id == reservation_id)
    if not found or not actor.reaches(found[0].created_by_api_client_id):
        raise NotFound(f"hold {reservation_id} does not exist")
    hold = found[0]
    if hold.status != "active":
        raise _not_active(hold)
    return hold


def _not_active(hold: Reservation) -> ReservationNotActive:
    # Who ended it by kind only: storefronts must not learn staff names or other clients.
    who = ("staff" if hold.ended_by_staff_id is not None
           else "storefront" if hold.ended_by_api_client_id is not None else "system")
    when = hold.ended_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return ReservationNotActive(
        f"hold {hold.id} was already {hold.status} by {_ENDERS[who]} at {when}",
        status=hold.status, ended_at=hold.ended_at, ended_by=who,
    )


_ENDERS = {"staff": "staff", "storefront": "a storefront", "system": "the system"}


def end_holds(holds: list[Reservation], status: str, kind: str, reason: str, actor: Actor,
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


@transactional
def release(reservation_id: int, *, actor: Actor, reason: str, now: datetime) -> Reservation:
    """Give a hold's units back. Releasing an ended hold changes nothing and says why."""
    reason = limits.reason_text(reason)
    return _end_one(reservation_id, "released", "release", reason, actor, now)


@dataclass
class ReleaseResult:
    released: list[Reservation] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


@transactional
def release_many(
    reservation_ids: list[int], *, actor: Actor, reason: str, now: datetime
) -> ReleaseResult:
    """Release several holds at once; holds already ended are listed with why, not an error."""
    reason = limits.reason_text(reason)
    if not isinstance(reservation_ids, (list, tuple, set, frozenset)):
        raise InvalidInput("holds must be given as a list of ids", field="reservation_ids")
    ids = sorted({limits.require_whole_number(i, "reservation_id", 1, limits.MAX_HOLD_ID)
                  for i in reservation_ids})
    if not ids:
        raise InvalidInput("select at least one hold", field="reservation_ids")
    holds = [h for h in locked_holds(Reservation.id.in_(ids))
             if actor.reaches(h.created_by_api_client_id)]
    result = ReleaseResult()
    found = {h.id for h in holds}
    result.refused += [(i, f"hold {i} does not exist") for i in ids if i not in found]
    for hold in holds:
        if hold.status == "active":
            result.released.append(hold)
        else:
            result.refused.append((hold.id, str(_not_active(hold))))
    if result.released:
        end_holds(result.released, "released", "release", reason, actor, now)
    return result


@transactional
def extend(
    reservation_id: int, until: datetime, *, actor: Actor, reason: str | None = None,
    now: datetime,
) -> Reservation:
    """Move a hold's expiry later, never past its creation + HOLD_EXTEND_CAP."""
    if not isinstance(until, datetime) or until.tzinfo is None:
        raise InvalidInput("the new expiry must be a date and time with a time zone",
                           field="until")
    limits.reason_text(reason, required=False)
    if db.session.connection().dialect.name == "postgresql":
        reservation_id = limits.require_whole_number(
            reservation_id, "reservation_id", 1, limits.MAX_HOLD_ID)
        hold = holds_pg.extend(reservation_id, until, current_app.config["HOLD_EXTEND_CAP"],
                               actor, now)
        if hold is not None:
            return hold
    # Not extended in one statement: the checks below say which rule refused it.
    hold = _active_hold(reservation_id, actor)
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


@transactional
def commit(reservation_id: int, *, actor: Actor, now: datetime, reason: str | None = None
           ) -> Reservation:
    """The held units leave the shop: on_hand and reserved both fall by the quantity."""
    reason = limits.reason_text(reason, required=False)
    return _end_one(reservation_id, "committed", "commit", reason or "sold", actor, now,
                    consume=True)


def _end_one(reservation_id: int, status: str, kind: str, reason: str, actor: Actor,
             now: datetime, consume: bool = False) -> Reservation:
    """End one hold: one statement on PostgreSQL (`holds_pg`) when it is active and the
    actor's; otherwise, and on SQLite, `end_holds` after `_active_hold` says why not."""
    reservation_id = limits.require_whole_number(
        reservation_id, "reservation_id", 1, limits.MAX_HOLD_ID)
    if db.session.connection().dialect.name == "postgresql":
        done = holds_pg.end(reservation_id, consume, status, kind, reason, actor, now)
        if done is not None:
            hold, change = done
            _changed_in_one_statement(change, now)
            return hold
    hold = _active_hold(reservation_id, actor)
    end_holds([hold], status, kind, reason, actor, now, consume=consume)
    return hold
