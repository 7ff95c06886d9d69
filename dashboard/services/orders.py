"""Orders that own holds: confirming commits their holds, cancelling gives the units back."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select

from ..extensions import db
from ..models import Order, Reservation
from . import limits
from .actor import Actor
from .alerts import evaluate_all
from .errors import NotFound, OrderNotCovered, OrderWrongState
from .holds import end_holds, locked_holds
from .ledger import Move, apply_deltas
from .transaction import transactional


def _order_for_update(order_id: int, actor: Actor) -> Order:
    order_id = limits.require_whole_number(order_id, "order_id", 1, limits.MAX_ID)
    order = db.session.scalars(
        select(Order).where(Order.id == order_id).with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if order is None or not actor.reaches(order.api_client_id):  # another storefront's: unknown
        raise NotFound(f"order {order_id} does not exist")
    return order


def _order_holds(order_id: int) -> list[Reservation]:
    return locked_holds(Reservation.order_id == order_id, Reservation.status == "active")


@transactional
def confirm_order(order_id: int, *, actor: Actor, now: datetime) -> Order:
    """pending -> confirmed: the order's holds are committed; refuses if an item is not held."""
    order = _order_for_update(order_id, actor)
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
        end_holds(holds, "committed", "commit", f"order {order.id} confirmed", actor, now,
                  consume=True)
    order.status, order.updated_at = "confirmed", now
    return order


@transactional
def cancel_order(order_id: int, *, actor: Actor, now: datetime, reason: str | None = None
                 ) -> Order:
    """pending -> cancelled releases its holds; confirmed -> cancelled returns committed units."""
    reason = limits.reason_text(reason, required=False)
    order = _order_for_update(order_id, actor)
    if order.status not in ("pending", "confirmed"):
        raise OrderWrongState(
            f"order {order.id} is {order.status} and can no longer be cancelled", order.status
        )
    note = reason or f"order {order.id} cancelled"
    holds = _order_holds(order.id)
    if holds:
        end_holds(holds, "released", "release", note, actor, now)
    if order.status == "confirmed":
        # Back to the location each unit was sold from.
        committed = db.session.execute(
            select(Reservation.product_id, Reservation.location_id, func.sum(Reservation.quantity))
            .where(Reservation.order_id == order.id, Reservation.status == "committed")
            .group_by(Reservation.product_id, Reservation.location_id)
            .order_by(Reservation.product_id, Reservation.location_id)
        ).all()
        moves = [
            Move(pid, "receive", on_hand_delta=qty, order_id=order.id, location_id=lid,
                 reason=f"{note}: returned to stock")
            for pid, lid, qty in committed
        ]
        apply_deltas(moves, actor, now)
        evaluate_all(sorted({pid for pid, _, _ in committed}), now)
    order.status, order.updated_at = "cancelled", now
    return order
