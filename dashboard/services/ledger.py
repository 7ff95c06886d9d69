"""The one mechanism that moves stock counters: update the stock levels and their
products' totals, and write the ledger.

Every service that changes `on_hand` or `reserved` ends here (or in `holds_pg`'s one
statements, which do the same three things), so the counters and the ledger can never
disagree (I3, per location and in total), and every change names its actor and reason.
A move that names no location is at the default location, like a count that names none.

Lock order (SPEC §3, extended): reservations by id, then products by id, then their stock
levels. A product's row lock guards all of its levels.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import json
from datetime import datetime

from sqlalchemy import any_, cast, column, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from ..extensions import db
from ..models import Location, Product, StockMovement
from .actor import Actor
from . import events  # the outbox: news written with the change
from .transaction import on_postgresql

# The reason on a new product's first receipt: not news to anyone (it was never on sale).
OPENING_STOCK = "opening stock"


@dataclass
class Move:
    """One ledger line to write; `*_after` are filled in by `apply_deltas`."""

    product_id: int
    kind: str
    on_hand_delta: int = 0
    reserved_delta: int = 0
    reservation_id: int | None = None
    order_id: int | None = None
    reason: str | None = None
    # The product's totals after this move (the ledger's `*_after`).
    on_hand_after: int | None = None
    reserved_after: int | None = None
    location_id: int | None = None  # None: the default location
    transfer_id: int | None = None


_RECORD_MANY = text(
    "INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,"
    " reserved_delta, on_hand_after, reserved_after, reservation_id, order_id, transfer_id,"
    " reason, actor_staff_id, actor_api_client_id, created_at)"
    " SELECT d.product_id, d.location_id, d.kind, d.on_hand_delta, d.reserved_delta,"
    "        d.on_hand_after, d.reserved_after, d.reservation_id, d.order_id, d.transfer_id,"
    "        d.reason, :staff, :client, :now"
    " FROM unnest(CAST(:product_id AS integer[]), CAST(:location_id AS integer[]),"
    "             CAST(:kind AS text[]),"
    "             CAST(:on_hand_delta AS integer[]), CAST(:reserved_delta AS integer[]),"
    "             CAST(:on_hand_after AS integer[]), CAST(:reserved_after AS integer[]),"
    "             CAST(:reservation_id AS bigint[]), CAST(:order_id AS integer[]),"
    "             CAST(:transfer_id AS integer[]), CAST(:reason AS text[]))"
    "      WITH ORDINALITY AS d(product_id, location_id, kind, on_hand_delta, reserved_delta,"
    "                           on_hand_after, reserved_after, reservation_id, order_id,"
    "                           transfer_id, reason, n)"
    " ORDER BY d.n"
)
_RECORD_COLUMNS = ("product_id", "location_id", "kind", "on_hand_delta", "reserved_delta",
                   "on_hand_after", "reserved_after", "reservation_id", "order_id",
                   "transfer_id", "reason")
# From this many rows on, PostgreSQL gets one array per column instead of a bind per value.
_RECORD_MANY_FROM = 50


_INSERT_MOVEMENTS = insert(StockMovement.__table__)


def record(moves: Iterable[Move], actor: Actor, now: datetime) -> None:
    """Append ledger rows (one multi-row INSERT), and the outbox's events for products whose
    available crossed zero: every counter change writes its ledger line here."""
    moves = list(moves)
    _place(moves)
    events.availability_crossings(_available_before_after(moves), now)
    if len(moves) >= _RECORD_MANY_FROM and on_postgresql():
        params = {c: [getattr(m, c) for m in moves] for c in _RECORD_COLUMNS}
        db.session.execute(_RECORD_MANY, {
            **params, "staff": actor.staff_id, "client": actor.api_client_id, "now": now})
        return
    rows = [
        {
            "product_id": m.product_id,
            "location_id": m.location_id,
            "transfer_id": m.transfer_id,
            "kind": m.kind,
            "on_hand_delta": m.on_hand_delta,
            "reserved_delta": m.reserved_delta,
            "on_hand_after": m.on_hand_after,
            "reserved_after": m.reserved_after,
            "actor_staff_id": actor.staff_id,
            "actor_api_client_id": actor.api_client_id,
            "reservation_id": m.reservation_id,
            "order_id": m.order_id,
            "reason": m.reason,
            "created_at": now,
        }
        for m in moves
    ]
    if rows:
        # Core, on the session's connection: the ORM's bulk path costs more Python per call.
        db.session.connection().execute(_INSERT_MOVEMENTS, rows)


def _place(moves: list[Move]) -> None:
    """Moves that name no location happen at the default location."""
    if any(m.location_id is None for m in moves):
        default = default_location_id()
        for m in moves:
            if m.location_id is None:
                m.location_id = default


def default_location_id() -> int:
    found = db.session.execute(select(Location.id).where(Location.is_default)).scalar()
    if found is None:
        raise LookupError("no default location is set")
    return found


def _available_before_after(moves: list[Move]):
    """(product_id, available before the first move, after the last) per product moved."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for m in moves:
        if m.reason == OPENING_STOCK or m.on_hand_after is None:
            continue
        after = m.on_hand_after - m.reserved_after
        first.setdefault(m.product_id, after - (m.on_hand_delta - m.reserved_delta))
        last[m.product_id] = after
    return [(pid, before, last[pid]) for pid, before in first.items()]


def among(column_, values: list):
    """`column IN values` as ONE parameter, however many values: an array on PostgreSQL,
    a JSON list on SQLite. A plain IN list is a parameter per value, and a 70,000-row
    import would pass PostgreSQL's 65,535 (and SQLite's 32,766); 20k parameters also cost
    150 ms a statement to parse and plan."""
    values = list(values)
    if on_postgresql():
        kind = ARRAY(column_.type)
        return column_ == any_(cast(literal(values, kind), kind))
    return column_.in_(select(column("value")).select_from(func.json_each(json.dumps(values))))


def lock_products(product_ids: Iterable[int]) -> dict[int, Product]:
    """Lock products in ascending id order (the deadlock rule) and return them fresh."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    rows = db.session.scalars(
        select(Product)
        .where(among(Product.id, ids))
        .order_by(Product.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {p.id: p for p in rows}


def apply_deltas(moves: list[Move], actor: Actor, now: datetime) -> dict[int, tuple[int, int]]:
    """Apply the moves' deltas to their stock levels and products set-based, then write the
    ledger.

    Products are locked in id order first (which guards their levels). The per-product and
    per-level sums go to the database in one UPDATE each (PostgreSQL) so a 100k-hold expiry
    is not 100k statements; each move's `*_after` is the product's running total after that
    move, in the order given. A level the sums would take below its holds or below zero is
    refused by its CHECK: callers check first and say why.
    Returns {product_id: (on_hand, reserved)} after the change.
    """
    _place(moves)
    sums: dict[int, list[int]] = {}
    level_sums: dict[tuple[int, int], list[int]] = {}
    for m in moves:
        s = sums.setdefault(m.product_id, [0, 0])
        s[0] += m.on_hand_delta
        s[1] += m.reserved_delta
        s = level_sums.setdefault((m.product_id, m.location_id), [0, 0])
        s[0] += m.on_hand_delta
        s[1] += m.reserved_delta
    if not sums:
        return {}
    ids = sorted(sums)
    if on_postgresql():
        # One array parameter: a 2000-product IN list costs more to parse than to lock.
        db.session.execute(
            text("SELECT id FROM products WHERE id = ANY(CAST(:ids AS integer[]))"
                 " ORDER BY id FOR UPDATE"), {"ids": ids})
    else:
        db.session.execute(
            select(Product.id).where(among(Product.id, ids)).order_by(Product.id).with_for_update()
        )
    after = _update_counters(ids, sums, now)
    _update_levels({k: v for k, v in sorted(level_sums.items()) if v != [0, 0]})

    # Walk backwards from the final figures so each ledger line shows its own "after".
    running = {pid: list(v) for pid, v in after.items()}
    for m in reversed(moves):
        on_hand, reserved = running[m.product_id]
        m.on_hand_after, m.reserved_after = on_hand, reserved
        running[m.product_id] = [on_hand - m.on_hand_delta, reserved - m.reserved_delta]
    record(moves, actor, now)
    return after


_UPDATE_LEVELS = text(
    "UPDATE stock_levels AS s"
    " SET on_hand = s.on_hand + d.on_hand_delta, reserved = s.reserved + d.reserved_delta"
    " FROM unnest(CAST(:pids AS integer[]), CAST(:lids AS integer[]), CAST(:dh AS integer[]),"
    "             CAST(:dr AS integer[])) AS d(product_id, location_id, on_hand_delta,"
    "                                           reserved_delta)"
    " WHERE s.product_id = d.product_id AND s.location_id = d.location_id"
)
_UPDATE_LEVEL = text(
    "UPDATE stock_levels SET on_hand = on_hand + :dh, reserved = reserved + :dr"
    " WHERE product_id = :pid AND location_id = :lid")


def _update_levels(level_sums: dict[tuple[int, int], list[int]]) -> None:
    """Add the sums to their levels. Every product has a level at every location
    (`locations`); a missing one would lose the change, so it stops the transaction."""
    if not level_sums:
        return
    keys = list(level_sums)
    if on_postgresql():
        changed = db.session.execute(_UPDATE_LEVELS, {
            "pids": [k[0] for k in keys], "lids": [k[1] for k in keys],
            "dh": [level_sums[k][0] for k in keys], "dr": [level_sums[k][1] for k in keys],
        }).rowcount
    else:
        changed = sum(db.session.execute(_UPDATE_LEVEL, {
            "pid": k[0], "lid": k[1], "dh": v[0], "dr": v[1]}).rowcount
            for k, v in level_sums.items())
    if changed != len(keys):
        raise LookupError(f"{len(keys) - changed} of {len(keys)} stock levels are missing")


def _update_counters(ids: list[int], sums: dict[int, list[int]], now: datetime):
    bind = db.session.get_bind()
    if bind.dialect.name == "postgresql":
        rows = db.session.execute(
            text(
                "UPDATE products AS p"
                " SET on_hand = p.on_hand + d.on_hand_delta,"
                "     reserved = p.reserved + d.reserved_delta, updated_at = :now"
                " FROM unnest(CAST(:ids AS integer[]), CAST(:dh AS integer[]),"
                "             CAST(:dr AS integer[])) AS d(id, on_hand_delta, reserved_delta)"
                " WHERE p.id = d.id RETURNING p.id, p.on_hand, p.reserved"
            ),
            {
                "ids": ids,
                "dh": [sums[i][0] for i in ids],
                "dr": [sums[i][1] for i in ids],
                "now": now,
            },
        ).all()
    else:
        # SQLite has one writer at a time, so a statement per product costs no contention.
        rows = [
            db.session.execute(
                update(Product)
                .where(Product.id == pid)
                .values(
                    on_hand=Product.on_hand + sums[pid][0],
                    reserved=Product.reserved + sums[pid][1],
                    updated_at=now,
                )
                .returning(Product.id, Product.on_hand, Product.reserved)
            ).one()
            for pid in ids
        ]
    return {pid: (on_hand, reserved) for pid, on_hand, reserved in rows}
