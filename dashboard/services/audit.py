"""Invariant checks (I1-I6), drift reconciliation, and the audited repair."""
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


def _held():
    return (
        select(Reservation.product_id, func.sum(Reservation.quantity).label("held"))
        .where(Reservation.status == "active")
        .group_by(Reservation.product_id)
        .subquery()
    )


def _ledger():
    return (
        select(
            StockMovement.product_id,
            func.sum(StockMovement.on_hand_delta).label("on_hand"),
            func.sum(StockMovement.reserved_delta).label("reserved"),
        )
        .group_by(StockMovement.product_id)
        .subquery()
    )


def check() -> list[str]:
    """Every violation of I1-I6 in the database, one sentence each (empty when clean)."""
    problems: list[str] = []
    session = db.session

    for sku, on_hand, reserved in session.execute(
        select(Product.sku, Product.on_hand, Product.reserved).where(
            or_(Product.reserved < 0, Product.reserved > Product.on_hand)
        )
    ):
        problems.append(f"I1 {sku}: reserved {reserved} outside 0..on_hand {on_hand}")

    held = _held()
    for sku, reserved, total in session.execute(
        select(Product.sku, Product.reserved, func.coalesce(held.c.held, 0))
        .outerjoin(held, held.c.product_id == Product.id)
        .where(Product.reserved != func.coalesce(held.c.held, 0))
    ):
        problems.append(f"I2 {sku}: reserved {reserved} but active holds sum to {total}")

    ledger = _ledger()
    for sku, on_hand, reserved, l_on_hand, l_reserved in session.execute(
        select(
            Product.sku, Product.on_hand, Product.reserved,
            func.coalesce(ledger.c.on_hand, 0), func.coalesce(ledger.c.reserved, 0),
        )
        .outerjoin(ledger, ledger.c.product_id == Product.id)
        .where(
            or_(
                Product.on_hand != func.coalesce(ledger.c.on_hand, 0),
                Product.reserved != func.coalesce(ledger.c.reserved, 0),
            )
        )
    ):
        problems.append(
            f"I3 {sku}: counters on_hand={on_hand} reserved={reserved}"
            f" but ledger sums on_hand={l_on_hand} reserved={l_reserved}"
        )

    for sku, n in session.execute(
        select(Product.sku, func.count())
        .join(StockAlert, StockAlert.product_id == Product.id)
        .where(StockAlert.status.in_(UNRESOLVED))
        .group_by(Product.sku)
        .having(func.count() > 1)
    ):
        problems.append(f"I4 {sku}: {n} unresolved alerts")

    level = level_sql()
    for sku, kind, want in session.execute(
        select(Product.sku, StockAlert.kind, level)
        .join(StockAlert, StockAlert.product_id == Product.id)
        .where(StockAlert.status.in_(UNRESOLVED), or_(level.is_(None), level != StockAlert.kind))
    ):
        problems.append(f"I5 {sku}: unresolved {kind} alert but the product is {want or 'fine'}")

    for rid, status in session.execute(
        select(Reservation.id, Reservation.status).where(
            or_(
                and_(Reservation.status == "active", Reservation.ended_at.is_not(None)),
                and_(
                    Reservation.status != "active",
                    or_(Reservation.ended_at.is_(None), Reservation.end_reason.is_(None)),
                ),
            )
        )
    ):
        problems.append(f"I6 hold {rid}: {status} without a consistent end time and reason")
    for rid, n in session.execute(
        select(StockMovement.reservation_id, func.count())
        .where(
            StockMovement.reservation_id.is_not(None),
            StockMovement.kind.in_(("release", "expire", "commit")),
        )
        .group_by(StockMovement.reservation_id)
        .having(func.count() > 1)
    ):
        problems.append(f"I6 hold {rid}: ended {n} times in the ledger")
    return problems


@dataclass
class Drift:
    product_id: int
    sku: str
    what: str  # "holds" (reserved != active holds) or "ledger" (counters != ledger sums)
    counter_on_hand: int
    counter_reserved: int
    expected_on_hand: int
    expected_reserved: int

    def describe(self) -> str:
        source = "active holds say" if self.what == "holds" else "the ledger says"
        return (
            f"{self.sku}: on_hand {self.counter_on_hand} / reserved {self.counter_reserved},"
            f" {source} {self.expected_on_hand} / {self.expected_reserved}"
        )


def reconcile() -> list[Drift]:
    """Find drift between counters, active holds and the ledger. Changes nothing."""
    held, ledger = _held(), _ledger()
    drift: list[Drift] = []
    for pid, sku, on_hand, reserved, total in db.session.execute(
        select(Product.id, Product.sku, Product.on_hand, Product.reserved,
               func.coalesce(held.c.held, 0))
        .outerjoin(held, held.c.product_id == Product.id)
        .where(Product.reserved != func.coalesce(held.c.held, 0))
        .order_by(Product.id)
    ):
        drift.append(Drift(pid, sku, "holds", on_hand, reserved, on_hand, int(total)))
    for pid, sku, on_hand, reserved, l_on_hand, l_reserved in db.session.execute(
        select(Product.id, Product.sku, Product.on_hand, Product.reserved,
               func.coalesce(ledger.c.on_hand, 0), func.coalesce(ledger.c.reserved, 0))
        .outerjoin(ledger, ledger.c.product_id == Product.id)
        .where(or_(Product.on_hand != func.coalesce(ledger.c.on_hand, 0),
                   Product.reserved != func.coalesce(ledger.c.reserved, 0)))
        .order_by(Product.id)
    ):
        drift.append(Drift(pid, sku, "ledger", on_hand, reserved, int(l_on_hand), int(l_reserved)))
    return drift


@transactional
def repair(*, actor: Actor, now: datetime, reason: str) -> list[str]:
    """Audited repair: reserved := active holds; then a ledger 'repair' line where the ledger
    disagrees with the counters. Holds exceeding on_hand cannot be repaired here."""
    reason = reason_text(reason)
    notes: list[str] = []
    moves: list[Move] = []
    for d in reconcile():
        if d.what != "holds":
            continue
        if d.expected_reserved > d.counter_on_hand:
            notes.append(f"{d.sku}: holds ({d.expected_reserved}) exceed on hand; release holds first")
            continue
        moves.append(Move(d.product_id, "repair", reserved_delta=d.expected_reserved - d.counter_reserved,
                          reason=f"repair: reserved set to active holds. {reason}"))
        notes.append(f"{d.sku}: reserved {d.counter_reserved} -> {d.expected_reserved}")
    apply_deltas(moves, actor, now)
    # The counter fix above moved the ledger with it; what drift is left is ledger-only.
    ledger_moves = []
    for d in reconcile():
        if d.what != "ledger":
            continue
        ledger_moves.append(Move(
            d.product_id, "repair",
            on_hand_delta=d.counter_on_hand - d.expected_on_hand,
            reserved_delta=d.counter_reserved - d.expected_reserved,
            reason=f"repair: ledger brought in line with counters. {reason}",
            on_hand_after=d.counter_on_hand, reserved_after=d.counter_reserved,
        ))
        notes.append(f"{d.sku}: ledger corrected to on_hand {d.counter_on_hand},"
                     f" reserved {d.counter_reserved}")
    if ledger_moves:
        record(ledger_moves, actor, now)
    evaluate_all(sorted({m.product_id for m in moves + ledger_moves}), now)
    return notes
