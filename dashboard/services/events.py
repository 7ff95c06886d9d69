"""The notification outbox: events written inside the transaction of the change that
caused them, so a change that rolls back tells nobody (issue 16).

The services call these while their locks are held; the scheduler later turns each event
into deliveries (services.delivery). Nothing here sends anything: a stock change pays for
one INSERT when something worth telling happened, else nothing. `stock_updated` (every
change of available, for storefront webhooks) costs an INSERT on every stock change, so it
is written only when the shop turns it on (NOTIFY_STOCK_UPDATED=1).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import insert, literal, select

from ..extensions import db
from ..models import NotificationEvent, Product, StockAlert
from . import ledger  # ledger.record calls back here; read at call time, not import time

_INSERT = insert(NotificationEvent.__table__)


def crossing(available_before: int, available_after: int) -> str | None:
    """The news in a change of available: it crossed zero, one way or the other."""
    if available_before > 0 >= available_after:
        return "out_of_stock"
    if available_before <= 0 < available_after:
        return "back_in_stock"
    return None


def available_changed(product_id: int, available_before: int, available_after: int,
                      now: datetime | None = None) -> None:
    """A product's available moved: `out_of_stock` / `back_in_stock` when it crossed zero
    (and `stock_updated` on any change when NOTIFY_STOCK_UPDATED is on).

    Costs nothing (no statement) when it did not cross, which is almost every change.
    """
    availability_crossings([(product_id, available_before, available_after)],
                           now or datetime.now(timezone.utc))


def availability_crossings(changes: Iterable[tuple[int, int, int]], now: datetime) -> None:
    """`available_changed` for many products at once: (product_id, before, after) each."""
    changes = list(changes)
    rows = [_row(kind, pid, after, now) for pid, before, after in changes
            if (kind := crossing(before, after)) is not None]
    if changes and stock_updated_wanted():
        rows += [_row("stock_updated", pid, after, now)
                 for pid, before, after in changes if before != after]
    if rows:
        _write(rows)


def stock_updated_wanted() -> bool:
    """NOTIFY_STOCK_UPDATED: the shop asked for an event on every change of available."""
    return bool(current_app.config.get("NOTIFY_STOCK_UPDATED"))


def alerts_changed(kind: str, alert_ids: list[int], now: datetime,
                   staff_id: int | None = None) -> None:
    """alert_opened / alert_escalated / alert_resolved for these alerts (one INSERT ... SELECT),
    with each alert's level and its product's available as they are now."""
    if not alert_ids:
        return
    rows = (
        select(literal(kind), StockAlert.product_id, StockAlert.id, StockAlert.kind,
               Product.on_hand - Product.reserved, literal(staff_id, db.Integer),
               literal(now, NotificationEvent.created_at.type), literal(False))
        .join(Product, Product.id == StockAlert.product_id)
        .where(ledger.among(StockAlert.id, alert_ids))
        .order_by(StockAlert.id)
    )
    db.session.execute(_INSERT.from_select(
        ["kind", "product_id", "alert_id", "level", "available", "staff_id", "created_at",
         "fanned_out"], rows))


def webhook_test(endpoint_id: int, staff_id: int, now: datetime) -> None:
    """The admin's "send test": an event for one endpoint only."""
    _write([{"kind": "test", "product_id": None, "endpoint_id": endpoint_id,
             "staff_id": staff_id, "created_at": now, "fanned_out": False}])


def _row(kind: str, product_id: int, available: int, now: datetime) -> dict:
    return {"kind": kind, "product_id": product_id, "available": available,
            "created_at": now, "fanned_out": False}


def _write(rows: list[dict]) -> None:
    # Core on the session's connection: part of the caller's transaction, no flush needed.
    db.session.connection().execute(_INSERT, rows)
