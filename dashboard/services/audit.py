"""Invariant checks (I1-I6, and transfers' units in transit), drift reconciliation, and
the audited repair.

Drift (I2: reserved vs active holds, I3: counters vs ledger sums) is found by one pair of
queries; `check` reports it as invariant violations, `reconcile` as drift to repair.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, true, update

from ..extensions import db
from ..models import (
    Location, Product, Reservation, StockAlert, StockLevel, StockMovement, Transfer, TransferLine,
)
from .actor import Actor
from .alerts import UNRESOLVED, evaluate_all, level_sql
from .ledger import Move, apply_deltas, record
from .limits import reason_text
from .transaction import transactional


@dataclass
class Drift:
    product_id: int
    sku: str
    # "holds" (reserved != active holds, I2), "ledger" (counters != ledger sums, I3), or
    # "totals" (the product's figures != the sums over its locations)
    what: str
    counter_on_hand: int
    counter_reserved: int
    expected_on_hand: int
    expected_reserved: int
    location_id: int | None = None  # None: the product's totals
    location: str | None = None  # its code

    @property
    def place(self) -> str:
        return f"{self.sku} at {self.location}" if self.location else self.sku

    def describe(self) -> str:
        source = {"holds": "active holds say", "ledger": "the ledger says",
                  "totals": "its locations add up to"}[self.what]
        return (
            f"{self.place}: the counters say on hand {self.counter_on_hand}, reserved"
            f" {self.counter_reserved}; {source} on hand {self.expected_on_hand}, reserved"
            f" {self.expected_reserved}"
        )

    def violation(self) -> str:
        """The invariant this drift breaks, as `check` reports it."""
        if self.what == "holds":
            return (f"I2 {self.place}: reserved {self.counter_reserved}"
                    f" but active holds sum to {self.expected_reserved}")
        if self.what == "totals":
            return (f"I1 {self.sku}: totals on_hand={self.counter_on_hand}"
                    f" reserved={self.counter_reserved} but its locations sum to"
                    f" on_hand={self.expected_on_hand} reserved={self.expected_reserved}")
        return (f"I3 {self.place}: counters on_hand={self.counter_on_hand}"
                f" reserved={self.counter_reserved} but ledger sums"
                f" on_hand={self.expected_on_hand} reserved={self.expected_reserved}")


def _holds_drift(per_location: bool = True) -> list[Drift]:
    """I2: levels (or, in total, products) whose `reserved` is not the sum of their active
    holds."""
    keys = [Reservation.product_id] + ([Reservation.location_id] if per_location else [])
    held = (select(*keys, func.sum(Reservation.quantity).label("held"))
            .where(Reservation.status == "active").group_by(*keys).subquery())
    total = func.coalesce(held.c.held, 0)
    if per_location:
        rows = db.session.execute(
            select(StockLevel.product_id, Product.sku, StockLevel.on_hand, StockLevel.reserved,
                   total, StockLevel.location_id, Location.code)
            .join(Product, Product.id == StockLevel.product_id)
            .join(Location, Location.id == StockLevel.location_id)
            .outerjoin(held, and_(held.c.product_id == StockLevel.product_id,
                                  held.c.location_id == StockLevel.location_id))
            .where(StockLevel.reserved != total)
            .order_by(StockLevel.product_id, StockLevel.location_id))
    else:
        rows = db.session.execute(
            select(Product.id, Product.sku, Product.on_hand, Product.reserved, total)
            .outerjoin(held, held.c.product_id == Product.id)
            .where(Product.reserved != total)
            .order_by(Product.id))
    return [Drift(r[0], r[1], "holds", r[2], r[3], r[2], int(r[4]), *r[5:]) for r in rows]


def _ledger_drift(per_location: bool = True) -> list[Drift]:
    """I3: levels (or, in total, products) whose counters are not the sums of their ledger
    deltas."""
    keys = [StockMovement.product_id] + ([StockMovement.location_id] if per_location else [])
    ledger = (select(*keys, func.sum(StockMovement.on_hand_delta).label("on_hand"),
                     func.sum(StockMovement.reserved_delta).label("reserved"))
              .group_by(*keys).subquery())
    on_hand, reserved = func.coalesce(ledger.c.on_hand, 0), func.coalesce(ledger.c.reserved, 0)
    if per_location:
        rows = db.session.execute(
            select(StockLevel.product_id, Product.sku, StockLevel.on_hand, StockLevel.reserved,
                   on_hand, reserved, StockLevel.location_id, Location.code)
            .join(Product, Product.id == StockLevel.product_id)
            .join(Location, Location.id == StockLevel.location_id)
            .outerjoin(ledger, and_(ledger.c.product_id == StockLevel.product_id,
                                    ledger.c.location_id == StockLevel.location_id))
            .where(or_(StockLevel.on_hand != on_hand, StockLevel.reserved != reserved))
            .order_by(StockLevel.product_id, StockLevel.location_id))
    else:
        rows = db.session.execute(
            select(Product.id, Product.sku, Product.on_hand, Product.reserved, on_hand, reserved)
            .outerjoin(ledger, ledger.c.product_id == Product.id)
            .where(or_(Product.on_hand != on_hand, Product.reserved != reserved))
            .order_by(Product.id))
    return [Drift(r[0], r[1], "ledger", r[2], r[3], int(r[4]), int(r[5]), *r[6:]) for r in rows]


def _totals_drift() -> list[Drift]:
    """Products whose on_hand and reserved are not the sums over their locations."""
    sums = (select(StockLevel.product_id, func.sum(StockLevel.on_hand).label("on_hand"),
                   func.sum(StockLevel.reserved).label("reserved"))
            .group_by(StockLevel.product_id).subquery())
    on_hand, reserved = func.coalesce(sums.c.on_hand, 0), func.coalesce(sums.c.reserved, 0)
    rows = db.session.execute(
        select(Product.id, Product.sku, Product.on_hand, Product.reserved, on_hand, reserved)
        .outerjoin(sums, sums.c.product_id == Product.id)
        .where(or_(Product.on_hand != on_hand, Product.reserved != reserved))
        .order_by(Product.id))
    return [Drift(pid, sku, "totals", oh, rs, int(e_oh), int(e_rs))
            for pid, sku, oh, rs, e_oh, e_rs in rows]


def reconcile() -> list[Drift]:
    """Find drift between counters (per location and their totals), active holds and the
    ledger. Changes nothing."""
    return _holds_drift() + _ledger_drift() + _totals_drift()


def check() -> list[str]:
    """Every violation of I1-I6 in the database, one sentence each (empty when clean)."""
    return [
        *_counters_out_of_range(),
        *_levels_missing(),
        *(d.violation() for d in reconcile()),
        # In total too: what a product's counters say against all its holds and ledger lines.
        *(d.violation() for d in _holds_drift(per_location=False)),
        *(d.violation() for d in _ledger_drift(per_location=False)),
        *_alerts_duplicated(),
        *_alerts_wrong(),
        *_holds_ended_wrongly(),
        *_transfers_wrong(),
    ]


def _counters_out_of_range() -> list[str]:
    """I1: 0 <= reserved <= on_hand (a database CHECK too; this catches a copy without it)."""
    rows = db.session.execute(
        select(Product.sku, Product.on_hand, Product.reserved).where(
            or_(Product.reserved < 0, Product.reserved > Product.on_hand)
        )
    )
    levels = db.session.execute(
        select(Product.sku, Location.code, StockLevel.on_hand, StockLevel.reserved)
        .join(Product, Product.id == StockLevel.product_id)
        .join(Location, Location.id == StockLevel.location_id)
        .where(or_(StockLevel.reserved < 0, StockLevel.reserved > StockLevel.on_hand)))
    return [*(f"I1 {sku}: reserved {reserved} outside 0..on_hand {on_hand}"
              for sku, on_hand, reserved in rows),
            *(f"I1 {sku} at {code}: reserved {reserved} outside 0..on_hand {on_hand}"
              for sku, code, on_hand, reserved in levels)]


def _levels_missing() -> list[str]:
    """Every product has a stock level at every location (services.locations)."""
    rows = db.session.execute(
        select(Product.sku, Location.code)
        .join(Location, true())
        .outerjoin(StockLevel, and_(StockLevel.product_id == Product.id,
                                    StockLevel.location_id == Location.id))
        .where(StockLevel.product_id.is_(None))
        .order_by(Product.id, Location.id).limit(100))
    return [f"I1 {sku}: no stock level at {code}" for sku, code in rows]


def _alerts_duplicated() -> list[str]:
    """I4: at most one unresolved alert per product."""
    rows = db.session.execute(
        select(Product.sku, func.count())
        .join(StockAlert, StockAlert.product_id == Product.id)
        .where(StockAlert.status.in_(UNRESOLVED))
        .group_by(Product.sku)
        .having(func.count() > 1)
    )
    return [f"I4 {sku}: {n} unresolved alerts" for sku, n in rows]


def _alerts_wrong() -> list[str]:
    """I5: each unresolved alert matches its product's level."""
    level = level_sql()
    rows = db.session.execute(
        select(Product.sku, StockAlert.kind, level)
        .join(StockAlert, StockAlert.product_id == Product.id)
        .where(StockAlert.status.in_(UNRESOLVED), or_(level.is_(None), level != StockAlert.kind))
    )
    return [f"I5 {sku}: unresolved {kind} alert but the product is {want or 'fine'}"
            for sku, kind, want in rows]


def _holds_ended_wrongly() -> list[str]:
    """I6: a hold leaves `active` exactly once, with an end time and a reason."""
    inconsistent = db.session.execute(
        select(Reservation.id, Reservation.status).where(
            or_(
                and_(Reservation.status == "active", Reservation.ended_at.is_not(None)),
                and_(
                    Reservation.status != "active",
                    or_(Reservation.ended_at.is_(None), Reservation.end_reason.is_(None)),
                ),
            )
        )
    )
    ended_twice = db.session.execute(
        select(StockMovement.reservation_id, func.count())
        .where(
            StockMovement.reservation_id.is_not(None),
            StockMovement.kind.in_(("release", "expire", "commit")),
        )
        .group_by(StockMovement.reservation_id)
        .having(func.count() > 1)
    )
    return [
        *(f"I6 hold {rid}: {status} without a consistent end time and reason"
          for rid, status in inconsistent),
        *(f"I6 hold {rid}: ended {n} times in the ledger" for rid, n in ended_twice),
    ]


def _transfers_wrong() -> list[str]:
    """Units in transit are in no level (services.transfers), so the transfer's lines must
    account for them: received plus written off within the quantity (a database CHECK
    too), and the ledger's transfer lines matching what was shipped and received."""
    moved = (select(StockMovement.transfer_id, StockMovement.product_id,
                    func.sum(case((StockMovement.kind == "transfer_out",
                                   -StockMovement.on_hand_delta), else_=0)).label("out"),
                    func.sum(case((StockMovement.kind == "transfer_in",
                                   StockMovement.on_hand_delta), else_=0)).label("in_"))
             .where(StockMovement.transfer_id.is_not(None))
             .group_by(StockMovement.transfer_id, StockMovement.product_id).subquery())
    shipped = case((Transfer.status.in_(("shipped", "received")), TransferLine.quantity),
                   else_=0)
    out, in_ = func.coalesce(moved.c.out, 0), func.coalesce(moved.c.in_, 0)
    rows = db.session.execute(
        select(Transfer.id, Product.sku, TransferLine.quantity, TransferLine.received,
               TransferLine.written_off, out, in_, shipped)
        .join(TransferLine, TransferLine.transfer_id == Transfer.id)
        .join(Product, Product.id == TransferLine.product_id)
        .outerjoin(moved, and_(moved.c.transfer_id == Transfer.id,
                               moved.c.product_id == TransferLine.product_id))
        .where(or_(TransferLine.received < 0, TransferLine.written_off < 0,
                   TransferLine.received + TransferLine.written_off > TransferLine.quantity,
                   out != shipped, in_ != TransferLine.received))
        .order_by(Transfer.id, TransferLine.product_id).limit(100))
    return [f"transfer T-{tid:05d} {sku}: quantity {quantity}, received {received}, written"
            f" off {written_off}; the ledger shipped {int(out_)} (expected {int(expected)}) and"
            f" received {int(in__)}"
            for tid, sku, quantity, received, written_off, out_, in__, expected in rows]


@transactional
def repair(*, actor: Actor, now: datetime, reason: str) -> list[str]:
    """Audited repair, per location: reserved := active holds there; then each product's
    totals := the sums over its locations; then a ledger 'repair' line where a location's
    ledger disagrees with its counters. Holds exceeding on hand cannot be repaired here."""
    reason = reason_text(reason)
    notes: list[str] = []
    moves: list[Move] = []
    for d in _holds_drift():
        if d.expected_reserved > d.counter_on_hand:
            notes.append(
                f"{d.place}: holds ({d.expected_reserved}) exceed on hand; release holds first")
            continue
        moves.append(Move(d.product_id, "repair", location_id=d.location_id,
                          reserved_delta=d.expected_reserved - d.counter_reserved,
                          reason=f"repair: reserved set to active holds. {reason}"))
        notes.append(f"{d.place}: reserved {d.counter_reserved} -> {d.expected_reserved}")
    apply_deltas(moves, actor, now)
    drifted_totals = _totals_drift()
    # A totals fix moves no level, so its ledger line has no deltas: it says why the
    # product's "after" figures jump.
    ledger_moves = []
    for d in drifted_totals:
        db.session.execute(update(Product).where(Product.id == d.product_id).values(
            on_hand=d.expected_on_hand, reserved=d.expected_reserved, updated_at=now))
        changed = ", ".join(
            f"{name} {was} -> {now_}" for name, was, now_ in (
                ("on hand", d.counter_on_hand, d.expected_on_hand),
                ("reserved", d.counter_reserved, d.expected_reserved)) if was != now_)
        notes.append(f"{d.sku}: {changed} (the totals of its locations)")
        ledger_moves.append(Move(d.product_id, "repair", reason=(
            f"repair: totals set to the sums of its locations ({changed}). {reason}")))
    # The counter fixes above moved the ledger with them; what drift is left is ledger-only.
    for d in _ledger_drift():
        ledger_moves.append(Move(
            d.product_id, "repair", location_id=d.location_id,
            on_hand_delta=d.counter_on_hand - d.expected_on_hand,
            reserved_delta=d.counter_reserved - d.expected_reserved,
            reason=f"repair: ledger brought in line with counters. {reason}",
        ))
        notes.append(f"{d.place}: ledger corrected to on hand {d.counter_on_hand},"
                     f" reserved {d.counter_reserved} (the counters win)")
    if ledger_moves:
        totals = {pid: (on_hand, reserved) for pid, on_hand, reserved in db.session.execute(
            select(Product.id, Product.on_hand, Product.reserved).where(
                Product.id.in_({m.product_id for m in ledger_moves})))}
        for m in ledger_moves:  # the line's "after" is the product's totals, as everywhere
            m.on_hand_after, m.reserved_after = totals[m.product_id]
        record(ledger_moves, actor, now)
    evaluate_all(sorted({m.product_id for m in moves + ledger_moves}
                        | {d.product_id for d in drifted_totals}), now)
    return notes
