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


@dataclass(frozen=True)
class Level:
    """The product's figures after one ledger row: a point of the stock chart."""

    when: datetime
    kind: str
    on_hand_delta: int
    reserved_delta: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


_LEVEL_COLUMNS = (StockMovement.created_at, StockMovement.kind, StockMovement.on_hand_delta,
                  StockMovement.reserved_delta, StockMovement.on_hand_after,
                  StockMovement.reserved_after)


def levels_since(product_id: int, since: datetime | None) -> tuple[Level | None, list[Level]]:
    """The level the range starts at (the last change before `since`) and the last
    CHART_POINTS changes since then, oldest first; `since` None is the whole history."""
    recent = select(*_LEVEL_COLUMNS).where(StockMovement.product_id == product_id)
    if since is not None:
        recent = recent.where(StockMovement.created_at >= since)
    # Both walk ix_stock_movements_product_id_id backwards from the newest row.
    rows = db.session.execute(recent.order_by(StockMovement.id.desc()).limit(CHART_POINTS)).all()
    changes = [Level(*row) for row in reversed(rows)]
    if since is None:
        return None, changes
    before = db.session.execute(
        select(*_LEVEL_COLUMNS).where(StockMovement.product_id == product_id,
                                      StockMovement.created_at < since)
        .order_by(StockMovement.id.desc()).limit(1)
    ).first()
    return (Level(*before) if before else None), changes


@dataclass
class ProductHolds:
    shown: list[Reservation]  # the HOLDS_SHOWN expiring soonest
    count: int  # all active holds of the product


def active_holds(product_id: int) -> ProductHolds:
    active = (Reservation.product_id == product_id, Reservation.status == "active")
    shown = list(db.session.scalars(
        select(Reservation).where(*active).options(joinedload(Reservation.location))
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
