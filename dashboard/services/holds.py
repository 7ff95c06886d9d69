"""Holds (reservations): reserve, reserve a whole cart, release, extend, commit.

A hold ends exactly once (I6): `end_holds` marks it, moves the counters through the ledger
and evaluates the alerts; ending an ended hold is refused with who ended it and when.
Lock order everywhere (SPEC §3): reservations by id, then products by id, then alerts.
Orders that own holds are in `orders`, the sweep of overdue holds in `expiry`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ..extensions import db
from ..models import Cart, Location, Product, Reservation, StockLevel, as_loaded
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
from .locations import allocation, code_or_none, find_location
from .owners import Owner, checked_owner
from .products import sellable_product
from .transaction import (DEADLOCK, LOCK_NOT_AVAILABLE, NotOneStatement, can_run_alone,
                          keep_so_far, on_postgresql, sqlstate, transactional)


_INSERT_HOLD = insert(Reservation.__table__).returning(Reservation.__table__.c.id)


@transactional
def reserve(
    product: Product | str | int,
    quantity: int,
    owner: Owner,
    ttl_seconds: int | None = None,
    *,
    location: Location | str | int | None = None,
    actor: Actor = SYSTEM,
    now: datetime,
    remembered: holds_pg.Remembered | None = None,
) -> Reservation:
    """Hold `quantity` units for `owner` until now + ttl at one location, or refuse with
    what each sellable location has.

    `location` names where (a code); without it the hold goes to the first sellable location
    that covers the whole quantity, in the shop's allocation order (HOLD_ALLOCATION).
    The fast path (units free there) is one statement on PostgreSQL (the take, the hold and
    its ledger line: `holds_pg`). bench/reserve.py holds it to the pace of that one
    statement under pgbench: add none.

    `remembered`: an Idempotency-Key whose answer the same statement stores (one round trip
    for a keyed reserve). Then the call is that statement or nothing: anything it cannot do
    raises NotOneStatement, having changed nothing, and the caller claims the key first and
    calls again without it.
    """
    quantity = limits.require_whole_number(quantity, "quantity", 1, limits.MAX_HOLD_QUANTITY)
    ttl = limits.ttl_seconds(ttl_seconds)
    owner = checked_owner(owner, actor)
    by_sku = isinstance(product, str) and "\x00" not in product
    by_id = (isinstance(product, int) and not isinstance(product, bool)
             and 0 < product <= limits.MAX_ID)
    one_statement = on_postgresql() and (by_sku or by_id or isinstance(product, Product))
    # A code goes into the statement as it is: reading the location first would be a round
    # trip (and a transaction) of its own. If nothing is taken, selling_location says why.
    code = code_or_none(location) if one_statement else None
    place = None if location is None or code else selling_location(location)
    reason = f"held for {owner.describe()}"
    if one_statement:
        key = product.strip() if by_sku else product if by_id else product.id
        take = (by_sku, key, quantity, owner, now + timedelta(seconds=ttl), reason, actor, now,
                place.id if place else None, code, allocation())
        if remembered is not None:
            done = _reserve_remembered(take, remembered, owner, ttl, actor, now)
        else:
            done = holds_pg.reserve(*take, alone=True) if _quiet_alone() else None
        if done is None:
            done = holds_pg.reserve(*take)
        if done is not None:
            hold = _hold_object(done.hold_id, done.change.product_id, done.location_id, quantity,
                                owner, ttl, actor, now)
            holds_pg.known_location(hold, done.location_code)
            _changed_in_one_statement(done.change, now)
            return hold
    if remembered is not None:
        raise NotOneStatement("not on PostgreSQL, or a product given some other way")
    if location is not None and place is None:
        place = selling_location(location)  # unknown, closed or not sold from: refused here
    location_id, code, after, gave_back = _place_slowly(product, quantity, place, now)
    hold = _insert_hold(after.product_id, location_id, quantity, owner, ttl, actor, now)
    holds_pg.known_location(hold, code)
    record(
        [Move(hold.product_id, "reserve", reserved_delta=quantity, reservation_id=hold.id,
              order_id=owner.order_id, reason=reason, location_id=location_id,
              on_hand_after=after.on_hand, reserved_after=after.reserved)],
        actor, now,
    )
    if gave_back:  # the level may have moved either way since the transaction began
        evaluate_all([hold.product_id], now)
    else:
        _evaluate(after, now)
    return hold


def selling_location(location: Location | str | int) -> Location:
    """The location a storefront named, if it may hold stock there."""
    found = find_location(location)
    if not found.is_active:
        raise InvalidInput(f"location {found.code} is closed; it keeps no stock to hold",
                           field="location")
    if not found.sellable:
        raise InvalidInput(f"location {found.code} does not sell to the storefront",
                           field="location")
    return found


def _sellable_levels(product_id: int, place: Location | None):
    """(location id, code, available) of the product's levels a hold may take from, in the
    allocation order."""
    available = StockLevel.on_hand - StockLevel.reserved
    order = ((available.desc(), Location.priority, Location.id)
             if allocation() == "most_available" else (Location.priority, Location.id))
    query = (select(StockLevel.location_id, Location.code, available)
             .join(Location, Location.id == StockLevel.location_id)
             .where(StockLevel.product_id == product_id, Location.is_active, Location.sellable)
             .order_by(*order))
    if place is not None:
        query = query.where(StockLevel.location_id == place.id)
    return db.session.execute(query).all()


_TAKE_AT_LEVEL = (
    update(StockLevel)
    .where(StockLevel.product_id == bindparam("product"),
           StockLevel.location_id == bindparam("location"),
           StockLevel.on_hand - StockLevel.reserved >= bindparam("quantity"))
    .values(reserved=StockLevel.reserved + bindparam("quantity"))
)
_TAKE_TOTAL = (
    update(Product)
    .where(Product.id == bindparam("product"))
    .values(reserved=Product.reserved + bindparam("quantity"),
            updated_at=bindparam("now", type_=Product.updated_at.type))
    .returning(Product.id, Product.on_hand, Product.reserved, Product.low_stock_threshold,
               Product.is_active, Product.alert_muted)
)


def _take_at(product_id: int, quantity: int, place: Location | None, now: datetime):
    """Take the units at the first level that covers them: (location id, code, StockChange),
    or None. The caller holds the product's lock, which guards its levels."""
    for location_id, code, available in _sellable_levels(product_id, place):
        if available < quantity:
            continue
        params = {"product": product_id, "location": location_id, "quantity": quantity,
                  "now": now}
        if db.session.connection().execute(_TAKE_AT_LEVEL, params).rowcount != 1:
            continue
        pid, on_hand, reserved, threshold, is_active, muted = db.session.connection().execute(
            _TAKE_TOTAL, params).one()
        return location_id, code, StockChange(pid, on_hand, reserved - quantity, on_hand,
                                              reserved, threshold, is_active, muted)
    return None


def _place_slowly(product: Product | str | int, quantity: int, place: Location | None,
                  now: datetime):
    """The slow path: say why the product cannot be held (unknown, inactive), place the hold
    statement by statement, or give back the product's overdue holds first (lazy expiry);
    else refuse with what each sellable location has.

    Returns (location id, code, the taken StockChange, whether overdue holds were given
    back: the caller then evaluates the product's alert once, for the net change)."""
    found = sellable_product(product)
    lock_products([found.id])
    taken = _take_at(found.id, quantity, place, now)
    if taken is not None:
        return (*taken, False)
    # A hold another transaction is ending is skipped, never waited for: that one may be
    # waiting for this product (a release, the scheduler's sweep): a deadlock.
    lazily_expired = (overdue(now).where(Reservation.product_id == found.id)
                      .order_by(Reservation.id).with_for_update(skip_locked=True))
    gave_back = expire_claimed(lazily_expired, now, evaluate=False).holds > 0
    taken = _take_at(found.id, quantity, place, now) if gave_back else None
    if taken is not None:
        return (*taken, True)
    if gave_back:
        evaluate_all([found.id], now)
    levels = _sellable_levels(found.id, place)
    keep_so_far()  # keep the lazy expiry; the refusal itself changes nothing
    by_location = [{"location": code, "available": available} for _, code, available in levels]
    total = sum(max(0, level["available"]) for level in by_location)
    where = (f" at {place.code}" if place is not None
             else " at any one location" if len(by_location) > 1 else "")
    spread = (" (" + ", ".join(f"{lv['location']} {lv['available']}" for lv in by_location) + ")"
              if len(by_location) > 1 else "")
    raise InsufficientStock(
        f"only {max((lv['available'] for lv in by_location), default=0)} available of"
        f" {found.sku}{where}; {quantity} requested{spread}",
        available=total, sku=found.sku, locations=by_location,
    )


def _insert_hold(product_id: int, location_id: int, quantity: int, owner: Owner, ttl: int,
                 actor: Actor, now: datetime) -> Reservation:
    # A Core INSERT ... RETURNING id, then the object we already know is attached to the
    # session as persistent: no unit-of-work flush, no ORM result processing, no re-read.
    hold_id = db.session.connection().execute(_INSERT_HOLD, _hold_values(
        product_id, location_id, quantity, owner, ttl, actor, now)).scalar_one()
    return _hold_object(hold_id, product_id, location_id, quantity, owner, ttl, actor, now)


def _hold_values(product_id: int, location_id: int, quantity: int, owner: Owner, ttl: int,
                 actor: Actor, now: datetime) -> dict:
    return dict(
        product_id=product_id, location_id=location_id, quantity=quantity, status="active", created_at=now,
        expires_at=now + timedelta(seconds=ttl), created_by_api_client_id=actor.api_client_id,
        session_key=owner.session_key, customer_id=owner.customer_id, cart_id=owner.cart_id,
        order_id=owner.order_id,
    )


def _hold_object(hold_id: int, product_id: int, location_id: int, quantity: int,
                 owner: Owner, ttl: int, actor: Actor, now: datetime) -> Reservation:
    """The hold just inserted, as a persistent object built from what we sent."""
    return as_loaded(Reservation, dict(
        id=hold_id, ended_at=None, ended_by_staff_id=None, ended_by_api_client_id=None,
        end_reason=None, **_hold_values(product_id, location_id, quantity, owner, ttl, actor, now)))


_KEY_UNIQUE = "uq_idempotency_keys_client_key"


def _reserve_remembered(take: tuple, remembered: holds_pg.Remembered, owner: Owner, ttl: int,
                        actor: Actor, now: datetime) -> holds_pg.Placed:
    """The quiet take with its key and answer in one statement, or NotOneStatement."""
    if not _quiet_alone():
        raise NotOneStatement("the call is not one statement by itself here")
    # The answer as it will be, but for what only the statement knows (the hold's id, and
    # its location when none was named), which it fills in.
    unsaved = Reservation(id=None, location=Location(code=""),
                          **_hold_values(None, None, take[2], owner, ttl, actor, now))
    body, status = remembered.answer(unsaved)
    try:
        done = holds_pg.reserve(*take, remembered=(remembered, json.dumps(body), status))
    except IntegrityError as error:
        if getattr(getattr(error.orig, "diag", None), "constraint_name", None) != _KEY_UNIQUE:
            raise
        # The key was answered since this statement began: nothing of it stayed.
        raise NotOneStatement("the key is taken") from error
    except OperationalError as error:
        # A lock not had in time or a deadlock: the statement was undone whole, and the
        # general path waits for the key as it always does.
        if sqlstate(error) not in (LOCK_NOT_AVAILABLE, DEADLOCK):
            raise
        raise NotOneStatement("the key (or the product) is busy") from error
    if done is None:  # short, inactive, not quiet, unknown...: the general path says why
        raise NotOneStatement("nothing was taken")
    return done


def _quiet_alone() -> bool:
    """Whether a hold's one statement may run quiet and alone (holds_pg): nothing else in
    the transaction, and no event wanted on every change of available."""
    return can_run_alone() and not events.stock_updated_wanted()


def _changed_in_one_statement(change: StockChange, now: datetime) -> None:
    """What `ledger.record` does after a move (the zero-crossing event), which the one
    statement wrote its ledger line without, then the alert check.

    After a quiet statement run alone this sends nothing, unless the product moved between
    the statement's snapshot and its row lock (release, commit): then the check runs in a
    transaction of its own, just after; the scheduled evaluation covers a crash between."""
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

    # Each line at one location, in the allocation order; lines may land at different ones.
    short, placed = [], {}
    for item in items:
        product = products[item.product_id]
        levels = _sellable_levels(product.id, None) if product.is_active else []
        spot = next((lv for lv in levels if lv[2] >= item.quantity), None)
        if spot is None:
            short.append(
                {"sku": product.sku, "requested": item.quantity,
                 "available": max((lv[2] for lv in levels), default=0),
                 "locations": [{"location": code, "available": available}
                               for _, code, available in levels]}
            )
        else:
            placed[item.product_id] = spot
    if short:
        names = ", ".join(f"{s['sku']} (only {s['available']} available)" for s in short)
        raise InsufficientStock(f"cart {cart_id} cannot be held: {names}", short=short)

    owner = Owner(cart_id=cart.id, customer_id=cart.customer_id, session_key=cart.session_key)
    holds = [
        Reservation(
            product_id=item.product_id, location_id=placed[item.product_id][0],
            quantity=item.quantity, status="active",
            created_at=now, expires_at=now + timedelta(seconds=ttl),
            created_by_api_client_id=actor.api_client_id, cart_id=cart.id,
            customer_id=cart.customer_id, session_key=cart.session_key,
        )
        for item in items
    ]
    db.session.add_all(holds)
    db.session.flush()
    for hold in holds:  # the answer names each hold's location: no read per hold for it
        holds_pg.known_location(hold, placed[hold.product_id][1])
    moves = [
        Move(h.product_id, "reserve", reserved_delta=h.quantity, reservation_id=h.id,
             location_id=h.location_id, reason=f"held for {owner.describe()}")
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
             on_hand_delta=-h.quantity if consume else 0, location_id=h.location_id,
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
    if on_postgresql():
        reservation_id = limits.require_whole_number(
            reservation_id, "reservation_id", 1, limits.MAX_HOLD_ID)
        hold = holds_pg.extend(reservation_id, until, current_app.config["HOLD_EXTEND_CAP"],
                               actor, now, alone=can_run_alone())
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
    if on_postgresql():
        end = (reservation_id, consume, status, kind, reason, actor, now)
        done = holds_pg.end(*end, alone=True) if _quiet_alone() else None
        if done is None:
            done = holds_pg.end(*end)
        if done is not None:
            hold, change = done
            _changed_in_one_statement(change, now)
            return hold
    hold = _active_hold(reservation_id, actor)
    end_holds([hold], status, kind, reason, actor, now, consume=consume)
    return hold
