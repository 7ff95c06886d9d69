"""The overview's figures (SPEC §6): products, holds, alerts and the last job runs."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from ..extensions import db
from ..models import JOB_NAMES, JobRun, Reservation, StockAlert
from .holds import EXPIRING_SOON, stuck_condition
from .stock import catalogue_counts


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
    counts = catalogue_counts()
    # One index-only scan of the covering ix_reservations_active_expires_at: no hold's row
    # is visited (a visit per hold was 10 of this statement's 27 ms at 10k active holds).
    active_holds, held_units, expiring, stuck = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Reservation.quantity), 0),
            _count_if((Reservation.expires_at > now) & (Reservation.expires_at <= now + EXPIRING_SOON)),
            _count_if(stuck_condition(now)),
        ).where(Reservation.status == "active")
    ).one()
    # Each an index-only range of ix_stock_alerts_status_opened_at_id.
    open_alerts, acknowledged = (
        db.session.scalar(select(func.count()).select_from(StockAlert).where(StockAlert.status == status))
        for status in ("open", "acknowledged"))
    last_runs = {
        job: db.session.scalars(
            select(JobRun).where(JobRun.job == job).order_by(JobRun.started_at.desc()).limit(1)
        ).first()
        for job in JOB_NAMES
    }
    return Tiles(counts["all"] - counts["inactive"], counts["inactive"], counts["low"],
                 counts["out"], active_holds, held_units, expiring, stuck, open_alerts,
                 acknowledged, last_runs)
