"""One product's page: its ledger (keyset on id), its recent levels for the chart, its
active holds and its alert history."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Product, Reservation, StockAlert, StockMovement

LEDGER_PAGE = 25
CHART_POINTS = 200
HOLDS_SHOWN = 50
ALERTS_SHOWN = 20


def product_by_sku(sku: str) -> Product | None:
    return db.session.scalars(select(Product).where(Product.sku == sku)).first()


def ledger_page(product_id: int, before: int | None) -> tuple[list[StockMovement], int | None]:
    """Most recent first, keyset on id (ix_stock_movements_product_id_id)."""
    statement = (
        select(StockMovement)
        .options(joinedload(StockMovement.actor_staff), joinedload(StockMovement.actor_api_client))
        .where(StockMovement.product_id == product_id)
        .order_by(StockMovement.id.desc())
        .limit(LEDGER_PAGE + 1)
    )
    if before is not None:
        statement = statement.where(StockMovement.id < before)
    rows = list(db.session.scalars(statement))
    older = rows[LEDGER_PAGE - 1].id if len(rows) > LEDGER_PAGE else None
    return rows[:LEDGER_PAGE], older


def recent_levels(product_id: int) -> list[tuple[datetime, int, int]]:
    """(when, on hand, reserved) after each of the last CHART_POINTS changes, oldest first."""
    rows = db.session.execute(
        select(StockMovement.created_at, StockMovement.on_hand_after, StockMovement.reserved_after)
        .where(StockMovement.product_id == product_id)
        .order_by(StockMovement.id.desc())
        .limit(CHART_POINTS)
    ).all()
    return [tuple(row) for row in reversed(rows)]


@dataclass
class ProductHolds:
    shown: list[Reservation]  # the HOLDS_SHOWN expiring soonest
    count: int  # all active holds of the product


def active_holds(product_id: int) -> ProductHolds:
    active = (Reservation.product_id == product_id, Reservation.status == "active")
    shown = list(db.session.scalars(
        select(Reservation).where(*active)
        .order_by(Reservation.expires_at, Reservation.id)
        .limit(HOLDS_SHOWN)
    ))
    count = db.session.scalar(select(func.count()).select_from(Reservation).where(*active))
    return ProductHolds(shown, count)


def alert_history(product_id: int) -> list[StockAlert]:
    """The ALERTS_SHOWN most recently raised alerts, with who acknowledged and resolved them."""
    return list(db.session.scalars(
        select(StockAlert)
        .options(joinedload(StockAlert.resolved_by), joinedload(StockAlert.acknowledged_by))
        .where(StockAlert.product_id == product_id)
        .order_by(StockAlert.opened_at.desc(), StockAlert.id.desc())
        .limit(ALERTS_SHOWN)
    ))
