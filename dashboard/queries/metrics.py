"""What /metrics reads from the database at each scrape: small reads, each served by an index."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..models import ALERT_KINDS, JOB_NAMES, JOB_STATUSES, JobRun, Reservation, StockAlert

RECENT = timedelta(hours=1)
UNRESOLVED = ("open", "acknowledged")


@dataclass
class LastRun:
    status: str
    seconds: float
    finished_at: datetime


@dataclass
class Snapshot:
    expiry_lag_seconds: float
    runs_last_hour: dict[tuple[str, str], int]  # (job, status) -> runs started in the last hour
    last_runs: dict[str, LastRun]  # job -> its latest finished run
    unresolved_alerts: dict[tuple[str, str], int]  # (kind, status) -> alerts


def snapshot(now: datetime) -> Snapshot:
    try:
        return Snapshot(_expiry_lag(now), _runs_last_hour(now), _last_runs(),
                        _unresolved_alerts())
    finally:
        db.session.rollback()  # read-only: end the snapshot


def _expiry_lag(now: datetime) -> float:
    # The first entry of ix_reservations_active_expires_at (partial: status = 'active').
    oldest = db.session.scalar(
        select(func.min(Reservation.expires_at))
        .where(Reservation.status == "active", Reservation.expires_at < now))
    return (now - oldest).total_seconds() if oldest is not None else 0.0


def _runs_last_hour(now: datetime) -> dict[tuple[str, str], int]:
    # ix_job_runs_job_started_at: one range per job.
    rows = db.session.execute(
        select(JobRun.job, JobRun.status, func.count())
        .where(JobRun.job.in_(JOB_NAMES), JobRun.started_at >= now - RECENT)
        .group_by(JobRun.job, JobRun.status)).all()
    counts = {(job, status): 0 for job in JOB_NAMES for status in JOB_STATUSES}
    counts.update({(job, status): count for job, status, count in rows})
    return counts


def _last_runs() -> dict[str, LastRun]:
    found = {}
    for job in JOB_NAMES:
        # ix_job_runs_job_started_at read backwards; at most a running row or two to skip.
        run = db.session.execute(
            select(JobRun.status, JobRun.started_at, JobRun.finished_at)
            .where(JobRun.job == job, JobRun.finished_at.is_not(None))
            .order_by(JobRun.started_at.desc()).limit(1)).first()
        if run is not None:
            seconds = (run.finished_at - run.started_at).total_seconds()
            found[job] = LastRun(run.status, seconds, run.finished_at)
    return found


def _unresolved_alerts() -> dict[tuple[str, str], int]:
    # uq_stock_alerts_one_unresolved is partial on the same predicate.
    rows = db.session.execute(
        select(StockAlert.kind, StockAlert.status, func.count())
        .where(StockAlert.status != "resolved")
        .group_by(StockAlert.kind, StockAlert.status)).all()
    counts = {(kind, status): 0 for kind in ALERT_KINDS for status in UNRESOLVED}
    counts.update({(kind, status): count for kind, status, count in rows})
    return counts
