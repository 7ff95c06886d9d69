"""The storefront's hold calls as ONE statement each on PostgreSQL (issue 12).

Each is a data-modifying CTE, built once at import: reserve does the conditional take, the
hold and its ledger line; release and commit end the hold, move the product's counters and
write the ledger line; extend moves the expiry. Each returns, in the same round trip, what
the answer and the alert check need, so the product's row lock is held for one statement
plus the COMMIT instead of four client round trips.

When a statement changes nothing (unknown SKU, inactive, short, hold not active, beyond the
cap...) the caller in `holds` runs the general multi-statement path, which explains the
refusal exactly (or, after lazy expiry, does the work): refusals are the cold path.

Lock order (SPEC §3): release and commit lock the hold (the outer UPDATE) before its
product (the UPDATE that joins on the hold's row, so it cannot run first).
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import Product, Reservation, UTCDateTime
from .actor import Actor
from .owners import Owner


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
_RESERVE = """
WITH taken AS (
    UPDATE products SET reserved = reserved + CAST(:quantity AS integer),
                        updated_at = CAST(:now AS timestamptz)
    WHERE {key} AND is_active AND on_hand - reserved >= CAST(:quantity AS integer)
    RETURNING id, on_hand, reserved, low_stock_threshold, is_active, alert_muted
), hold AS (
    INSERT INTO reservations (product_id, quantity, status, created_at, expires_at,
                              created_by_api_client_id, session_key, customer_id, cart_id,
                              order_id)
    SELECT id, CAST(:quantity AS integer), 'active', CAST(:now AS timestamptz),
           CAST(:expires_at AS timestamptz), CAST(:client AS integer),
           CAST(:session_key AS varchar), CAST(:customer_id AS bigint),
           CAST(:cart_id AS integer), CAST(:order_id AS integer)
    FROM taken
    RETURNING id, product_id
), line AS (
    INSERT INTO stock_movements (product_id, kind, on_hand_delta, reserved_delta,
                                 on_hand_after, reserved_after, reservation_id, order_id,
                                 reason, actor_staff_id, actor_api_client_id, created_at)
    SELECT taken.id, 'reserve', 0, CAST(:quantity AS integer), taken.on_hand, taken.reserved,
           hold.id, CAST(:order_id AS integer), CAST(:reason AS text),
           CAST(:staff AS integer), CAST(:client AS integer), CAST(:now AS timestamptz)
    FROM taken JOIN hold ON hold.product_id = taken.id
)
SELECT hold.id, taken.id, taken.on_hand, taken.reserved - CAST(:quantity AS integer),
       taken.on_hand, taken.reserved, taken.low_stock_threshold, taken.is_active,
       taken.alert_muted
FROM taken JOIN hold ON hold.product_id = taken.id
"""
RESERVE_BY_SKU = text(_RESERVE.format(key="sku = CAST(:key AS varchar)"))
RESERVE_BY_ID = text(_RESERVE.format(key="id = CAST(:key AS integer)"))

_HOLD_COLUMNS = ("id", "product_id", "quantity", "session_key", "customer_id", "cart_id",
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
    RETURNING {_HOLD_RETURNING}
), moved AS (
    UPDATE products AS p
    SET on_hand = p.on_hand - {{consumed}}, reserved = p.reserved - ended.quantity,
        updated_at = CAST(:now AS timestamptz)
    FROM ended WHERE p.id = ended.product_id
    RETURNING p.id, p.sku, p.on_hand, p.reserved, p.low_stock_threshold, p.is_active,
              p.alert_muted
), line AS (
    INSERT INTO stock_movements (product_id, kind, on_hand_delta, reserved_delta,
                                 on_hand_after, reserved_after, reservation_id, order_id,
                                 reason, actor_staff_id, actor_api_client_id, created_at)
    SELECT moved.id, CAST(:kind AS varchar), -{{consumed}}, -ended.quantity, moved.on_hand,
           moved.reserved, ended.id, ended.order_id, CAST(:reason AS text),
           CAST(:staff AS integer), CAST(:client AS integer), CAST(:now AS timestamptz)
    FROM ended JOIN moved ON moved.id = ended.product_id
)
SELECT {", ".join(f"ended.{c}" for c in _HOLD_COLUMNS)}, moved.sku,
       moved.on_hand + {{consumed}}, moved.reserved + ended.quantity, moved.on_hand,
       moved.reserved, moved.low_stock_threshold, moved.is_active, moved.alert_muted
FROM ended JOIN moved ON moved.id = ended.product_id
"""
_TIMES = {"created_at": UTCDateTime(), "expires_at": UTCDateTime(),
          "ended_at": UTCDateTime()}
RELEASE = text(_END.format(consumed="0"))
COMMIT = text(_END.format(consumed="ended.quantity"))

EXTEND = text(f"""
UPDATE reservations AS r SET expires_at = CAST(:until AS timestamptz)
FROM products AS p
WHERE r.id = CAST(:id AS bigint) AND p.id = r.product_id AND r.status = 'active'
  AND {_REACHES}
  AND r.expires_at > CAST(:now AS timestamptz) AND r.expires_at < CAST(:until AS timestamptz)
  AND CAST(:until AS timestamptz) > CAST(:now AS timestamptz)
  AND CAST(:until AS timestamptz)
      <= r.created_at + CAST(:cap AS integer) * interval '1 second'
RETURNING {_HOLD_RETURNING}, p.sku
""")


def reserve(by_sku: bool, key, quantity: int, owner: Owner, expires_at: datetime,
            reason: str, actor: Actor, now: datetime):
    """(hold id, StockChange) when the units were free and the product sellable, else None."""
    row = db.session.connection().execute(RESERVE_BY_SKU if by_sku else RESERVE_BY_ID, {
        "key": key, "quantity": quantity, "now": now, "expires_at": expires_at,
        "client": actor.api_client_id, "staff": actor.staff_id,
        "session_key": owner.session_key, "customer_id": owner.customer_id,
        "cart_id": owner.cart_id, "order_id": owner.order_id, "reason": reason,
    }).first()
    return None if row is None else (row[0], StockChange(*row[1:]))


def end(reservation_id: int, consume: bool, status: str, kind: str, reason: str,
        actor: Actor, now: datetime):
    """(the ended hold, StockChange) when the hold was active and reachable, else None."""
    row = db.session.connection().execute(COMMIT if consume else RELEASE, {
        "id": reservation_id, "status": status, "kind": kind, "reason": reason,
        "now": now, "staff": actor.staff_id, "client": actor.api_client_id,
        "anyone": _reaches_anyone(actor),
    }).first()
    if row is None:
        return None
    width = len(_HOLD_COLUMNS)
    hold = _known_hold(row[:width], row[width])
    return hold, StockChange(hold.product_id, *row[width + 1:])


def extend(reservation_id: int, until: datetime, cap_seconds: int, actor: Actor,
           now: datetime) -> Reservation | None:
    """The extended hold when every rule of `holds.extend` allows it, else None."""
    row = db.session.connection().execute(EXTEND, {
        "id": reservation_id, "until": until, "now": now, "cap": cap_seconds,
        "client": actor.api_client_id, "anyone": _reaches_anyone(actor),
    }).first()
    return None if row is None else _known_hold(row[:-1], row[-1])


def _reaches_anyone(actor: Actor) -> bool:
    return actor.kind != "api" or actor.all_storefronts


def _known_hold(values, sku: str) -> Reservation:
    """The hold as the statement returned it, put in the session without a re-read (and
    with its product's SKU, so the answer needs no lazy load)."""
    fields = dict(zip(_HOLD_COLUMNS, values))
    for name, kind in _TIMES.items():  # the session's time zone -> aware UTC, as the ORM does
        fields[name] = kind.process_result_value(fields[name], None)
    hold = Reservation(**fields)
    make_transient_to_detached(hold)
    # merge: the session may already know this hold (the caller just made it, say).
    hold = db.session.merge(hold, load=False)
    product = Product(id=hold.product_id, sku=sku)
    make_transient_to_detached(product)  # the columns not set stay unloaded
    set_committed_value(hold, "product", db.session.merge(product, load=False))
    return hold
