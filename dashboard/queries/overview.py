"""The overview's figures (SPEC §6): products, holds, alerts and the last job runs."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from ..extensions import db
from ..models import JOB_NAMES, JobRun, Product, Reservation, StockAlert
from .holds import EXPIRING_SOON, stuck_condition
from .stock import alerting


@dataclass
class Tiles:
    products: int
    inactive: int
    low: int
    out: int
    active_holds: int
    held_units: int
    expiring: int
    stuck: int
    open_alerts: int
    acknowledged_alerts: int
    last_runs: dict[str, JobRun | None]


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def tiles(now: datetime) -> Tiles:
    """Every figure, each from an index: products, holds, alerts, and the last job runs."""
    # Counted apart so each reads only its index (the partial ones hold the few rows that
    # matter), not one pass over every product.
    def count(*where) -> int:
        return db.session.scalar(select(func.count()).select_from(Product).where(*where)) or 0

    inactive = count(~Product.is_active)
    products = count() - inactive
    # Low and out in one pass over the alerting rows (ix_products_alerting), not two.
    available = Product.on_hand - Product.reserved
    low, out = db.session.execute(
        select(_count_if(available > 0), _count_if(available <= 0)).where(alerting())
    ).one()
    active_holds, held_units, expiring, stuck = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Reservation.quantity), 0),
            _count_if((Reservation.expires_at > now) & (Reservation.expires_at <= now + EXPIRING_SOON)),
            _count_if(stuck_condition(now)),
        ).where(Reservation.status == "active")
    ).one()
    open_alerts, acknowledged = db.session.execute(
        select(_count_if(StockAlert.status == "open"), _count_if(StockAlert.status == "acknowledged"))
        .where(StockAlert.status != "resolved")
    ).one()
    last_runs = {
        job: db.session.scalars(
            select(JobRun).where(JobRun.job == job).order_by(JobRun.started_at.desc()).limit(1)
        ).first()
        for job in JOB_NAMES
    }
    return Tiles(products, inactive, low, out, active_holds, held_units, expiring, stuck,
                 open_alerts, acknowledged, last_runs)
