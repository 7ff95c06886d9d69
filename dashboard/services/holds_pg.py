"""The storefront's hold calls as ONE statement each on PostgreSQL (issue 12).

Each is a data-modifying CTE, built once at import: reserve does the conditional take, the
hold and its ledger line; release and commit end the hold, move the product's counters and
write the ledger line; extend moves the expiry. Each returns, in the same round trip, what
the answer and the alert check need, so the product's row lock is held for one statement
plus the COMMIT instead of four client round trips.

Most calls need nothing after their statement: the product stays above its low-stock
threshold, so no alert or event is due. Each statement has a *quiet* form that acts only
then; when nothing else is in the transaction the caller runs that form alone, in
autocommit (`transaction.run_alone`): the statement and its COMMIT are one round trip, and
the row locks last one statement. A call that is not quiet runs the plain form in a
transaction with the alert check after it.

A reserve with an Idempotency-Key has a form of its own (`Remembered`, `_GATE`): the same
quiet take that also writes the key's row with the call's answer, so the key costs no round
trip either.

When a statement changes nothing (unknown SKU, inactive, short, hold not active, beyond the
cap...) the caller in `holds` runs the general multi-statement path, which explains the
refusal exactly (or, after lazy expiry, does the work): refusals are the cold path.

Lock order (SPEC §3): release and commit lock the hold (the outer UPDATE) before its
product (the UPDATE that joins on the hold's row, so it cannot run first).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import Location, Product, Reservation, UTCDateTime, as_loaded
from .actor import Actor
from .owners import Owner
from .transaction import run_alone


class StockChange(NamedTuple):
    """One product's counters before and after a change, with what its alert level needs.

    `available_before` and `available` say whether available crossed zero (out of stock,
    back in stock) without another read."""

    product_id: int
    on_hand_before: int
    reserved_before: int
    on_hand: int
    reserved: int
    threshold: int
    is_active: bool
    muted: bool

    @property
    def available_before(self) -> int:
        return self.on_hand_before - self.reserved_before

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


# Every parameter is CAST: in an INSERT ... SELECT list an untyped parameter (or a NULL)
# would be taken as text.
#
# `product` locks the product first (the lock order: products, then their levels); `spot`
# picks the location from the statement's snapshot, and `level` takes the units there with
# the conditional UPDATE, which PostgreSQL re-checks against the latest row if another
# transaction changed it meanwhile. So a stale pick takes nothing (and the caller's slow
# path places the hold), never too much.
_RESERVE = """
WITH {gate}product AS (
    SELECT id FROM products WHERE {key} AND is_active {quiet} {gated} FOR UPDATE
), spot AS (
    SELECT s.product_id, s.location_id, l.code
    FROM stock_levels AS s
    JOIN product ON product.id = s.product_id
    JOIN locations AS l ON l.id = s.location_id
    WHERE l.is_active AND l.sellable
      AND (CAST(:location AS integer) IS NULL OR s.location_id = CAST(:location AS integer))
      AND (CAST(:location_code AS varchar) IS NULL OR l.code = CAST(:location_code AS varchar))
      AND s.on_hand - s.reserved >= CAST(:quantity AS integer)
    ORDER BY {order}
    LIMIT 1
), level AS (
    UPDATE stock_levels AS s SET reserved = s.reserved + CAST(:quantity AS integer)
    FROM spot
    WHERE s.product_id = spot.product_id AND s.location_id = spot.location_id
      AND s.on_hand - s.reserved >= CAST(:quantity AS integer)
    RETURNING s.product_id, s.location_id, spot.code
), taken AS (
    UPDATE products AS p SET reserved = p.reserved + CAST(:quantity AS integer),
                             updated_at = CAST(:now AS timestamptz)
    FROM level WHERE p.id = level.product_id
    RETURNING p.id, p.on_hand, p.reserved, p.low_stock_threshold, p.is_active, p.alert_muted,
              level.location_id, level.code
), hold AS (
    INSERT INTO reservations (product_id, location_id, quantity, status, created_at,
                              expires_at, created_by_api_client_id, session_key, customer_id,
                              cart_id, order_id)
    SELECT id, location_id, CAST(:quantity AS integer), 'active', CAST(:now AS timestamptz),
           CAST(:expires_at AS timestamptz), CAST(:client AS integer),
           CAST(:session_key AS varchar), CAST(:customer_id AS bigint),
           CAST(:cart_id AS integer), CAST(:order_id AS integer)
    FROM taken
    RETURNING id, product_id
), line AS (
    INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,
                                 on_hand_after, reserved_after, reservation_id, order_id,
                                 reason, actor_staff_id, actor_api_client_id, created_at)
    SELECT taken.id, taken.location_id, 'reserve', 0, CAST(:quantity AS integer),
           taken.on_hand, taken.reserved, hold.id, CAST(:order_id AS integer),
           CAST(:reason AS text), CAST(:staff AS integer), CAST(:client AS integer),
           CAST(:now AS timestamptz)
    FROM taken JOIN hold ON hold.product_id = taken.id
){remembered}
SELECT hold.id, taken.location_id, taken.code, taken.id, taken.on_hand,
       taken.reserved - CAST(:quantity AS integer), taken.on_hand, taken.reserved,
       taken.low_stock_threshold, taken.is_active, taken.alert_muted
FROM taken JOIN hold ON hold.product_id = taken.id
"""
# Where a hold that names no location goes (config.HOLD_ALLOCATIONS).
ORDERS = {
    "priority": "l.priority, l.id",
    "most_available": "s.on_hand - s.reserved DESC, l.priority, l.id",
}
# Quiet: the take leaves the product above its low-stock threshold and its alert unmuted,
# so no alert can need raising, changing or resolving and available crosses no zero: the
# statement is the call's whole effect and runs as its own transaction (`run_alone`).
# FOR UPDATE re-checks the condition against the latest row, so it holds when it commits.
_QUIET_TAKE = ("AND NOT alert_muted"
               " AND on_hand - reserved - CAST(:quantity AS integer) > low_stock_threshold")
# With an Idempotency-Key (`Remembered`): the key's row and its answer are written by the
# same statement, so a keyed reserve is one round trip like a plain one. `gate` first takes
# the key's transaction lock, which the API's general claim takes too (api.idempotency), so
# a request waits for another with the same key before it locks the product, never while
# holding it (lock_timeout bounds the wait; the setting lasts this one statement). The
# two-key lock (client, hash of the key) is a key space apart from the one-key advisory
# locks of the scheduler and the notifications (PostgreSQL keeps them apart). The key's
# row is a plain INSERT: if the key was answered meanwhile, its unique index refuses the
# statement and nothing of it stays. The answer is the one the caller built for the hold
# with its id and location filled in, which only this statement knows.
def key_lock(client: str, key: str) -> str:
    """The SQL taking an Idempotency-Key's transaction lock, from the two parameters named:
    one expression for the gate below and the API's general claim, which must agree."""
    return f"pg_advisory_xact_lock(CAST({client} AS integer), hashtext(CAST({key} AS text)))"


_GATE = f"""gate AS (
    SELECT set_config('lock_timeout', CAST(:lock_timeout AS text), true),
           {key_lock(':key_client', ':idem_key')}
), """
_REMEMBERED = """, remembered AS (
    INSERT INTO idempotency_keys (api_client_id, key, request_hash, status_code, response_body,
                                  created_at)
    SELECT CAST(:key_client AS integer), CAST(:idem_key AS varchar),
           CAST(:request_hash AS varchar), CAST(:status AS integer),
           CAST(jsonb_set(jsonb_set(CAST(:answer AS jsonb), '{id}', to_jsonb(hold.id)),
                          '{location}', to_jsonb(taken.code)) AS text),
           CAST(:now AS timestamptz)
    FROM taken JOIN hold ON hold.product_id = taken.id
)"""


def _reserve_statement(by_sku: bool, order: str, quiet: bool, remembered: bool = False):
    return text(_RESERVE.format(
        key="sku = CAST(:key AS varchar)" if by_sku else "id = CAST(:key AS integer)",
        order=order, quiet=_QUIET_TAKE if quiet else "",
        gate=_GATE if remembered else "",
        gated="AND EXISTS (SELECT FROM gate)" if remembered else "",
        remembered=_REMEMBERED if remembered else ""))


RESERVE = {
    (by_sku, allocation, quiet): _reserve_statement(by_sku, order, quiet)
    for by_sku in (True, False) for allocation, order in ORDERS.items()
    for quiet in (True, False)
}
# Always quiet and alone: anything else is the general path, with the key claimed first.
RESERVE_REMEMBERED = {
    (by_sku, allocation): _reserve_statement(by_sku, order, True, remembered=True)
    for by_sku in (True, False) for allocation, order in ORDERS.items()
}
RESERVE_BY_SKU = RESERVE[True, "priority", True]  # what bench/reserve.py runs under pgbench

_HOLD_COLUMNS = ("id", "product_id", "location_id", "quantity", "session_key", "customer_id", "cart_id",
                 "order_id", "status", "created_at", "expires_at", "ended_at",
                 "ended_by_staff_id", "ended_by_api_client_id", "end_reason",
                 "created_by_api_client_id")
_HOLD_RETURNING = ", ".join(f"r.{c}" for c in _HOLD_COLUMNS)
# A storefront reaches only its own holds unless granted every storefront (Actor.reaches).
_REACHES = ("(CAST(:anyone AS boolean)"
            " OR r.created_by_api_client_id = CAST(:client AS integer))")

_END = f"""
WITH ended AS (
    UPDATE reservations AS r
    SET status = CAST(:status AS varchar), ended_at = CAST(:now AS timestamptz),
        end_reason = CAST(:reason AS text), ended_by_staff_id = CAST(:staff AS integer),
        ended_by_api_client_id = CAST(:client AS integer)
    WHERE r.id = CAST(:id AS bigint) AND r.status = 'active' AND {_REACHES}
      {{quiet}}
    RETURNING {_HOLD_RETURNING}
), moved AS (
    UPDATE products AS p
    SET on_hand = p.on_hand - {{consumed}}, reserved = p.reserved - ended.quantity,
        updated_at = CAST(:now AS timestamptz)
    FROM ended WHERE p.id = ended.product_id
    RETURNING p.id, p.sku, p.on_hand, p.reserved, p.low_stock_threshold, p.is_active,
              p.alert_muted
), level AS (
    UPDATE stock_levels AS s
    SET on_hand = s.on_hand - {{consumed}}, reserved = s.reserved - ended.quantity
    FROM ended JOIN moved ON moved.id = ended.product_id
    WHERE s.product_id = ended.product_id AND s.location_id = ended.location_id
    RETURNING (SELECT code FROM locations WHERE id = s.location_id) AS code
), line AS (
    INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,
                                 on_hand_after, reserved_after, reservation_id, order_id,
                                 reason, actor_staff_id, actor_api_client_id, created_at)
    SELECT moved.id, ended.location_id, CAST(:kind AS varchar), -{{consumed}},
           -ended.quantity, moved.on_hand, moved.reserved, ended.id, ended.order_id,
           CAST(:reason AS text), CAST(:staff AS integer), CAST(:client AS integer),
           CAST(:now AS timestamptz)
    FROM ended JOIN moved ON moved.id = ended.product_id
)
SELECT {", ".join(f"ended.{c}" for c in _HOLD_COLUMNS)}, level.code, moved.sku,
       moved.on_hand + {{consumed}}, moved.reserved + ended.quantity, moved.on_hand,
       moved.reserved, moved.low_stock_threshold, moved.is_active, moved.alert_muted
FROM ended JOIN moved ON moved.id = ended.product_id, level
"""
_TIMES = {"created_at": UTCDateTime(), "expires_at": UTCDateTime(),
          "ended_at": UTCDateTime()}
# Quiet, as for reserve: the product is above its threshold, unmuted. Its row is read from
# the statement's snapshot here, not locked (the hold is locked before its product), so
# the caller checks the figures the statement returns and evaluates if they moved.
_QUIET_END = ("AND EXISTS (SELECT FROM products AS q WHERE q.id = r.product_id"
              " AND NOT q.alert_muted AND q.on_hand - q.reserved > q.low_stock_threshold)")
END = {
    (consume, quiet): text(_END.format(consumed="ended.quantity" if consume else "0",
                                       quiet=_QUIET_END if quiet else ""))
    for consume in (True, False) for quiet in (True, False)
}

EXTEND = text(f"""
UPDATE reservations AS r SET expires_at = CAST(:until AS timestamptz)
FROM products AS p, locations AS l
WHERE r.id = CAST(:id AS bigint) AND p.id = r.product_id AND l.id = r.location_id
  AND r.status = 'active'
  AND {_REACHES}
  AND r.expires_at > CAST(:now AS timestamptz) AND r.expires_at < CAST(:until AS timestamptz)
  AND CAST(:until AS timestamptz) > CAST(:now AS timestamptz)
  AND CAST(:until AS timestamptz)
      <= r.created_at + CAST(:cap AS integer) * interval '1 second'
RETURNING {_HOLD_RETURNING}, l.code, p.sku
""")


class Remembered(NamedTuple):
    """An Idempotency-Key to be answered by the reserve statement itself (see _GATE).

    `answer` makes the call's answer (body, status) from its hold; it is given a hold that
    is not saved (no id, location code "") and the statement fills in those two."""

    api_client_id: int
    key: str
    request_hash: str
    wait_ms: int
    answer: Callable[[Reservation], tuple[object, int]]


class Placed(NamedTuple):
    hold_id: int
    location_id: int
    location_code: str
    change: StockChange


def reserve(by_sku: bool, key, quantity: int, owner: Owner, expires_at: datetime,
            reason: str, actor: Actor, now: datetime, location_id: int | None,
            location_code: str | None, allocation: str, alone: bool = False,
            remembered: tuple[Remembered, str, int] | None = None) -> Placed | None:
    """Where the hold was placed when the units were free there and the product sellable,
    else None. The location named by id or by code (matched in the statement, unread
    before it: an unknown or closed one just takes nothing); neither: by `allocation`.
    `alone`: only a quiet take (see _QUIET_TAKE), as its own transaction. `remembered`:
    (the key, its answer as JSON, its status), stored by the same statement (run alone)."""
    params = {
        "key": key, "quantity": quantity, "now": now, "expires_at": expires_at,
        "client": actor.api_client_id, "staff": actor.staff_id, "location": location_id,
        "location_code": location_code,
        "session_key": owner.session_key, "customer_id": owner.customer_id,
        "cart_id": owner.cart_id, "order_id": owner.order_id, "reason": reason,
    }
    if remembered is None:
        row = _run(alone, RESERVE[by_sku, allocation, alone], params)
    else:
        claim, answer, status = remembered
        params.update(key_client=claim.api_client_id, idem_key=claim.key,
                      request_hash=claim.request_hash, lock_timeout=f"{claim.wait_ms}ms",
                      answer=answer, status=status)
        row = run_alone(RESERVE_REMEMBERED[by_sku, allocation], params)
    return None if row is None else Placed(row[0], row[1], row[2], StockChange(*row[3:]))


def end(reservation_id: int, consume: bool, status: str, kind: str, reason: str,
        actor: Actor, now: datetime, alone: bool = False):
    """(the ended hold, StockChange) when the hold was active and reachable (and, `alone`,
    its product quiet: see _QUIET_END), else None."""
    row = _run(alone, END[consume, alone], {
        "id": reservation_id, "status": status, "kind": kind, "reason": reason,
        "now": now, "staff": actor.staff_id, "client": actor.api_client_id,
        "anyone": _reaches_anyone(actor),
    })
    if row is None:
        return None
    width = len(_HOLD_COLUMNS)
    hold = _known_hold(row[:width], row[width], row[width + 1])
    return hold, StockChange(hold.product_id, *row[width + 2:])


def extend(reservation_id: int, until: datetime, cap_seconds: int, actor: Actor,
           now: datetime, alone: bool = False) -> Reservation | None:
    """The extended hold when every rule of `holds.extend` allows it, else None."""
    row = _run(alone, EXTEND, {
        "id": reservation_id, "until": until, "now": now, "cap": cap_seconds,
        "client": actor.api_client_id, "anyone": _reaches_anyone(actor),
    })
    return None if row is None else _known_hold(row[:-2], row[-2], row[-1])


def _run(alone: bool, statement, params: dict):
    if alone:
        return run_alone(statement, params)
    return db.session.connection().execute(statement, params).first()


def _reaches_anyone(actor: Actor) -> bool:
    return actor.kind != "api" or actor.all_storefronts


def _known_hold(values, code: str, sku: str) -> Reservation:
    """The hold as the statement returned it, in the session without a re-read (and with
    its product's SKU and location's code, so the answer needs no lazy load)."""
    fields = dict(zip(_HOLD_COLUMNS, values))
    for name, kind in _TIMES.items():  # the session's time zone -> aware UTC, as the ORM does
        fields[name] = kind.process_result_value(fields[name], None)
    hold = as_loaded(Reservation, fields)
    known(hold, sku, code)
    return hold


def known(hold: Reservation, sku: str, code: str) -> None:
    """Attach the hold's product and location as far as we know them (SKU, code), without
    a read; the columns not set stay unloaded."""
    set_committed_value(hold, "product", as_loaded(Product, {"id": hold.product_id, "sku": sku}))
    known_location(hold, code)


def known_location(hold: Reservation, code: str) -> None:
    """Attach the hold's location as far as the answer needs it (its code), without a read."""
    set_committed_value(hold, "location",
                        as_loaded(Location, {"id": hold.location_id, "code": code}))
