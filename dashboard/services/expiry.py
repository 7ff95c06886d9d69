"""Expiring overdue holds, set-based: the scheduler's sweep and the lazy expiry of `reserve`.

Never a Python loop of one UPDATE per hold: the overdue holds are ended in one statement,
their units go back through `apply_deltas` (one UPDATE for all their products), and the
products' alerts are evaluated together.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from ..extensions import db
from ..models import Reservation
from . import limits
from .actor import SYSTEM
from .alerts import AlertChanges, evaluate_all
from .ledger import Move, apply_deltas
from .transaction import transaction


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


def overdue(now: datetime):
    """The ids of active holds whose time is up (a query to narrow, order or lock)."""
    return select(Reservation.id).where(
        Reservation.status == "active", Reservation.expires_at <= now
    )


def expire_claimed(claim, now: datetime, evaluate: bool = True) -> ExpiryResult:
    """Expire the active holds the `claim` query selects, set-based, in the open transaction.

    `evaluate=False` is for a caller that changes the same products again in this
    transaction (lazy expiry before a hold) and evaluates their alerts once at the end:
    alerts follow the transaction's net change, so an acknowledged alert on a product out of
    stock before and after is not resolved and re-opened on the way.
    """
    # A materialized CTE runs the claim once: inside `IN (subquery)` PostgreSQL may re-run
    # a `LIMIT n FOR UPDATE SKIP LOCKED` claim per row and end far more than one batch.
    claimed = claim.cte("claimed").prefix_with("MATERIALIZED")
    ended = db.session.execute(
        update(Reservation)
        .where(Reservation.id == claimed.c.id, Reservation.status == "active")
        .values(status="expired", ended_at=now, end_reason="expired: not completed in time")
        .returning(Reservation.id, Reservation.product_id, Reservation.quantity,
                   Reservation.order_id, Reservation.location_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not ended:
        return ExpiryResult()
    ended.sort()
    moves = [
        Move(pid, "expire", reserved_delta=-qty, reservation_id=rid, order_id=oid,
             location_id=lid, reason="hold expired")
        for rid, pid, qty, oid, lid in ended
    ]
    apply_deltas(moves, SYSTEM, now)
    product_ids = sorted({m.product_id for m in moves})
    return ExpiryResult(
        holds=len(ended), units=sum(-m.reserved_delta for m in moves),
        product_ids=set(product_ids),
        alerts=evaluate_all(product_ids, now) if evaluate else AlertChanges(),
    )


def expire_due(now: datetime, batch: int = 2000, max_batches: int | None = None) -> ExpiryResult:
    """Expire every overdue hold, one committed batch at a time.

    Each batch claims holds with FOR UPDATE SKIP LOCKED (a hold being released right now
    is skipped, not waited for) and commits, so no product stays locked longer than one batch.
    """
    batch = limits.require_whole_number(batch, "batch", 1, 1_000_000)
    if max_batches is not None:
        max_batches = limits.require_whole_number(max_batches, "max_batches", 1, limits.MAX_ID)
    total = ExpiryResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        claim = (
            overdue(now).order_by(Reservation.id).limit(batch)
            .with_for_update(skip_locked=True)
        )
        with transaction():
            result = expire_claimed(claim, now)
        total += result
        batches += 1
        if result.holds < batch:
            break
    return total
