"""What pages read about the scheduled jobs: recent runs, next run, the scheduler's
heartbeat, and the drift the latest reconcile found."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import JOB_NAMES, JobRun, SchedulerHeartbeat, StaffUser
from ..schedule import interval, next_slot, silence_limit

RECENT_RUNS = 10
DESCRIPTIONS = {
    "expire": "Expires overdue holds and gives their units back.",
    "alerts": "Re-evaluates every product's alerts (catches changes made outside the app).",
    "reconcile": "Looks for drift between counters, active holds and the ledger; never repairs.",
}


@dataclass
class RunView:
    run: JobRun
    detail: dict
    triggered_by: str | None

    @property
    def seconds(self) -> float | None:
        if self.run.finished_at is None:
            return None
        return (self.run.finished_at - self.run.started_at).total_seconds()

    @property
    def summary(self) -> str:
        """The run's figures as 'holds_expired 3, units_returned 5' (lists left out)."""
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in self.detail.items()
                 if not isinstance(v, (list, dict)) and k != "manual"]
        return ", ".join(parts)


@dataclass
class JobView:
    name: str
    description: str
    interval_seconds: int
    next_run: datetime | None
    runs: list[RunView]
    last_failure: RunView | None


def last_heartbeat() -> SchedulerHeartbeat | None:
    """The freshest heartbeat of any scheduler process."""
    return db.session.scalars(
        select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.beat_at.desc()).limit(1)
    ).first()


def next_run_at(name: str, now: datetime) -> datetime | None:
    """When the scheduler will next run `name`; None while no scheduler is alive."""
    beat = last_heartbeat()
    if beat is None or now - beat.beat_at > silence_limit():
        return None
    return next_slot(name, now)


def _detail(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _views(runs: list[JobRun], names: dict[int, str]) -> list[RunView]:
    return [RunView(r, _detail(r.detail), names.get(r.triggered_by_id)) for r in runs]


def job_view(name: str, now: datetime) -> JobView:
    runs = db.session.scalars(
        select(JobRun).where(JobRun.job == name)
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(RECENT_RUNS)
    ).all()
    failure = next((r for r in runs if r.status == "failed"), None) or db.session.scalars(
        select(JobRun).where(JobRun.job == name, JobRun.status == "failed")
        .order_by(JobRun.started_at.desc()).limit(1)
    ).first()
    staff_ids = {r.triggered_by_id for r in [*runs, failure] if r and r.triggered_by_id}
    names = dict(db.session.execute(
        select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))
    ).all()) if staff_ids else {}
    return JobView(
        name=name, description=DESCRIPTIONS[name], interval_seconds=interval(name),
        next_run=next_run_at(name, now), runs=_views(runs, names),
        last_failure=_views([failure], names)[0] if failure else None,
    )


def all_jobs(now: datetime) -> list[JobView]:
    return [job_view(name, now) for name in JOB_NAMES]


@dataclass
class SchedulerState:
    last_beat: datetime | None
    alive: bool


def scheduler_state(now: datetime) -> SchedulerState:
    beat = last_heartbeat()
    if beat is None:
        return SchedulerState(None, False)
    return SchedulerState(beat.beat_at, now - beat.beat_at <= silence_limit())


@dataclass
class DriftReport:
    """What the latest reconcile run found (the job runs `services.reconcile()`), or a
    check made just now (`checked_at` without a run: after a repair, in its transaction)."""

    run: JobRun | None
    count: int
    found: list[str]
    checked_at: datetime | None = None

    def __post_init__(self):
        if self.checked_at is None and self.run is not None:
            self.checked_at = self.run.started_at


def latest_drift() -> DriftReport:
    # The ledger-wide comparison takes hundreds of ms at scale: pages show the last run's
    # findings (at most RECONCILE_INTERVAL old) and "check now" runs it on demand.
    run = db.session.scalars(
        select(JobRun).where(JobRun.job == "reconcile", JobRun.status == "ok")
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)
    ).first()
    if run is None:
        return DriftReport(None, 0, [])
    detail = _detail(run.detail)
    found = detail.get("found")
    count = detail.get("drift")
    return DriftReport(run, count if isinstance(count, int) else 0,
                       [str(x) for x in found] if isinstance(found, list) else [])
