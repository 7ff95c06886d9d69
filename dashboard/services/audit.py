"""Invariant checks (I1-I6), drift reconciliation, and the audited repair.

Drift (I2: reserved vs active holds, I3: counters vs ledger sums) is found by one pair of
queries; `check` reports it as invariant violations, `reconcile` as drift to repair.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from ..extensions import db
from ..models import Product, Reservation, StockAlert, StockMovement
from .actor import Actor
from .alerts import UNRESOLVED, evaluate_all, level_sql
from .ledger import Move, apply_deltas, record
from .limits import reason_text
from .transaction import transactional


@dataclass
class Drift:
    product_id: int
    sku: str
    what: str  # "holds" (reserved != active holds, I2) or "ledger" (counters != ledger, I3)
    counter_on_hand: int
    counter_reserved: int
    expected_on_hand: int
    expected_reserved: int

    def describe(self) -> str:
        source = "active holds say" if self.what == "holds" else "the ledger says"
        return (
            f"{self.sku}: the counters say on hand {self.counter_on_hand}, reserved"
            f" {self.counter_reserved}; {source} on hand {self.expected_on_hand}, reserved"
            f" {self.expected_reserved}"
        )

    def violation(self) -> str:
        """The invariant this drift breaks, as `check` reports it."""
        if self.what == "holds":
            return (f"I2 {self.sku}: reserved {self.counter_reserved}"
                    f" but active holds sum to {self.expected_reserved}")
        return (f"I3 {self.sku}: counters on_hand={self.counter_on_hand}"
                f" reserved={self.counter_reserved} but ledger sums"
                f" on_hand={self.expected_on_hand} reserved={self.expected_reserved}")


def _holds_drift() -> list[Drift]:
    """I2: products whose `reserved` is not the sum of their active holds."""
    held = (
        select(Reservation.product_id, func.sum(Reservation.quantity).label("held"))
        .where(Reservation.status == "active")
        .group_by(Reservation.product_id)
        .subquery()
    )
    total = func.coalesce(held.c.held, 0)
    rows = db.session.execute(
        select(Product.id, Product.sku, Product.on_hand, Product.reserved, total)
        .outerjoin(held, held.c.product_id == Product.id)
        .where(Product.reserved != total)
        .order_by(Product.id)
    )
    return [Drift(pid, sku, "holds", on_hand, reserved, on_hand, int(held_units))
            for pid, sku, on_hand, reserved, held_units in rows]


def _ledger_drift() -> list[Drift]:
    """I3: products whose counters are not the sums of their ledger deltas."""
    ledger = (
        select(
            StockMovement.product_id,
            func.sum(StockMovement.on_hand_delta).label("on_hand"),
            func.sum(StockMovement.reserved_delta).label("reserved"),
        )
        .group_by(StockMovement.product_id)
        .subquery()
    )
    on_hand, reserved = func.coalesce(ledger.c.on_hand, 0), func.coalesce(ledger.c.reserved, 0)
    rows = db.session.execute(
        select(Product.id, Product.sku, Product.on_hand, Product.reserved, on_hand, reserved)
        .outerjoin(ledger, ledger.c.product_id == Product.id)
        .where(or_(Product.on_hand != on_hand, Product.reserved != reserved))
        .order_by(Product.id)
    )
    return [Drift(pid, sku, "ledger", counted, held, int(l_on_hand), int(l_reserved))
            for pid, sku, counted, held, l_on_hand, l_reserved in rows]


def reconcile() -> list[Drift]:
    """Find drift between counters, active holds and the ledger. Changes nothing."""
    return _holds_drift() + _ledger_drift()


def check() -> list[str]:
    """Every violation of I1-I6 in the database, one sentence each (empty when clean)."""
    return [
        *_counters_out_of_range(),
        *(d.violation() for d in reconcile()),
        *_alerts_duplicated(),
        *_alerts_wrong(),
        *_holds_ended_wrongly(),
    ]


def _counters_out_of_range() -> list[str]:
    """I1: 0 <= reserved <= on_hand (a database CHECK too; this catches a copy without it)."""
    rows = db.session.execute(
        select(Product.sku, Product.on_hand, Product.reserved).where(
            or_(Product.reserved < 0, Product.reserved > Product.on_hand)
        )
    )
    return [f"I1 {sku}: reserved {reserved} outside 0..on_hand {on_hand}"
            for sku, on_hand, reserved in rows]


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


@transactional
def repair(*, actor: Actor, now: datetime, reason: str) -> list[str]:
    """Audited repair: reserved := active holds; then a ledger 'repair' line where the ledger
    disagrees with the counters. Holds exceeding on_hand cannot be repaired here."""
    reason = reason_text(reason)
    notes: list[str] = []
    moves: list[Move] = []
    for d in _holds_drift():
        if d.expected_reserved > d.counter_on_hand:
            notes.append(
                f"{d.sku}: holds ({d.expected_reserved}) exceed on hand; release holds first")
            continue
        moves.append(Move(d.product_id, "repair",
                          reserved_delta=d.expected_reserved - d.counter_reserved,
                          reason=f"repair: reserved set to active holds. {reason}"))
        notes.append(f"{d.sku}: reserved {d.counter_reserved} -> {d.expected_reserved}")
    apply_deltas(moves, actor, now)
    # The counter fix above moved the ledger with it; what drift is left is ledger-only.
    ledger_moves = []
    for d in _ledger_drift():
        ledger_moves.append(Move(
            d.product_id, "repair",
            on_hand_delta=d.counter_on_hand - d.expected_on_hand,
            reserved_delta=d.counter_reserved - d.expected_reserved,
            reason=f"repair: ledger brought in line with counters. {reason}",
            on_hand_after=d.counter_on_hand, reserved_after=d.counter_reserved,
        ))
        notes.append(f"{d.sku}: ledger corrected to on hand {d.counter_on_hand},"
                     f" reserved {d.counter_reserved} (the counters win)")
    if ledger_moves:
        record(ledger_moves, actor, now)
    evaluate_all(sorted({m.product_id for m in moves + ledger_moves}), now)
    return notes
