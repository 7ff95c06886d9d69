"""The scheduled jobs (SPEC §8) and running one, recorded in `job_runs`.

JOBS: job name -> callable(now) -> dict of what the run did: hold expiry, alert evaluation
(then housekeeping), reconciliation. The scheduler, `flask jobs run` and the Jobs page's
"run now" all go through here:

run_job(name, *, now, triggered_by=None) -> JobRun     one manual run now, in a slot of its own
run_scheduled(name, now) -> JobRun | None              a scheduler's run of now's slot
beat(now)                                              a scheduler process saying it is alive

How slots are claimed exactly once and runs are locked is in `job_runs`; where slots fall
is in `dashboard.schedule`.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from datetime import datetime, timedelta

from flask import current_app

from .. import schedule
from ..extensions import db
from ..models import JobRun, SchedulerHeartbeat, StaffUser
from . import job_runs
from .alerts import evaluate_alerts
from .audit import reconcile as find_drift
from .expiry import ExpiryResult, expire_due
from .housekeeping import prune
from .transaction import transactional

log = logging.getLogger("stockroom.jobs")

# Set when the scheduler process is asked to stop: a long expiry stops between batches.
stopping = threading.Event()


def expire(now: datetime) -> dict:
    """Expire overdue holds, one committed batch at a time (never a product lock for longer)."""
    batch = current_app.config["EXPIRE_BATCH"]
    total = ExpiryResult()
    while True:
        result = expire_due(now, batch=batch, max_batches=1)
        total += result
        if result.holds < batch:
            break
        if stopping.is_set():
            # Every batch so far is committed; the next run picks up the rest.
            return {**total.as_dict(), "stopped_early": True}
    return total.as_dict()


def alerts(now: datetime) -> dict:
    """Evaluate every product's alerts (catches changes made outside the app), then tidy up."""
    changes = evaluate_alerts(now=now).as_dict()
    return {**changes, "pruned": prune(now)}


def reconcile(now: datetime) -> dict:
    """Report drift between counters, active holds and the ledger. Never repairs."""
    drift = find_drift()
    db.session.rollback()  # read-only: end the snapshot
    if drift:
        log.warning("reconcile found drift in %d product(s): %s", len(drift),
                    "; ".join(d.describe() for d in drift[:5]))
    return {"drift": len(drift), "found": [d.describe() for d in drift[:50]]}


JOBS = {"expire": expire, "alerts": alerts, "reconcile": reconcile}


def rows_affected(name: str, detail: dict) -> int:
    if name == "expire":
        return detail["holds_expired"]
    if name == "alerts":
        return sum(detail[k] for k in ("opened", "escalated", "deescalated", "resolved"))
    return detail["drift"]


@transactional
def beat(now: datetime, name: str = job_runs.HOST[:50]) -> None:
    """Record that this scheduler process is alive (one row per process)."""
    row = db.session.get(SchedulerHeartbeat, name)
    if row is None:
        db.session.add(SchedulerHeartbeat(
            name=name, beat_at=now, host=socket.gethostname()[:100], pid=os.getpid()))
    else:
        row.beat_at = now


def run_job(name: str, *, now: datetime, triggered_by: StaffUser | None = None) -> JobRun:
    """Run `name` once now, outside the schedule, in a slot of its own.

    If a run of the same job is in progress elsewhere, the run is recorded as skipped.
    """
    _known(name)
    slot = job_runs.manual_slot(now)
    with job_runs.job_lock(name) as acquired:
        if not acquired:
            return job_runs.record_skipped(
                name, slot, triggered_by, f"another {name} run was in progress; try again shortly")
        while True:
            run_id = job_runs.claim(name, slot, triggered_by)
            if run_id is not None:
                break
            slot += timedelta(microseconds=1)  # two manual runs in the same microsecond
        return _execute(name, run_id, now, manual=True, slot=slot)


def run_scheduled(name: str, now: datetime) -> JobRun | None:
    """The scheduler's run of the slot holding `now`; None if another process has it."""
    _known(name)
    slot = schedule.slot_start(now, schedule.interval(name))
    try:
        with job_runs.job_lock(name) as acquired:
            if not acquired:
                log.debug("%s slot %s: another process is running %s", name, slot, name)
                return None
            run_id = job_runs.claim(name, slot, None)
            if run_id is None:
                log.debug("%s slot %s: already claimed", name, slot)
                return None
            return _execute(name, run_id, now, manual=False, slot=slot)
    except Exception as error:
        # Could not even claim (the database is down): log now, record when it is back.
        db.session.rollback()
        job_runs.record_unclaimed_failure(name, slot, error)
        log.error("job %s slot %s failed before it started: %s", name, _iso(slot),
                  job_runs.one_line(error))
        return None


def _execute(name: str, run_id: int, now: datetime, *, manual: bool, slot: datetime) -> JobRun:
    started = job_runs.clock()
    try:
        detail = JOBS[name](now)
    except Exception as error:
        db.session.rollback()  # whatever the failed job left uncommitted
        finished = job_runs.clock()
        message = f"{job_runs.one_line(error)}\n\n{traceback.format_exc()}"[:8000]
        log.error("job %s %s run %d failed after %.2fs: %s", name, _label(slot, manual), run_id,
                  (finished - started).total_seconds(), job_runs.one_line(error))
        job_runs.finish(run_id, status="failed", error=message, finished=finished,
                        detail={"manual": True} if manual else None)
        return _reload(run_id, manual)
    finished = job_runs.clock()
    if manual:
        detail = {**detail, "manual": True}
    count = rows_affected(name, detail)
    log.info("job %s %s run %d ok in %.2fs: %s", name, _label(slot, manual), run_id,
             (finished - started).total_seconds(),
             " ".join(f"{k}={v}" for k, v in detail.items()
                      if k != "manual" and not isinstance(v, (list, dict))))
    job_runs.finish(run_id, status="ok", detail=detail, rows=count, finished=finished)
    return _reload(run_id, manual)


def _reload(run_id: int, manual: bool) -> JobRun | None:
    """The recorded run; the scheduler does not need it if the database just went away."""
    try:
        return db.session.get(JobRun, run_id)
    except Exception:
        db.session.rollback()
        if manual:
            raise
        return None


def _known(name: str) -> None:
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}; jobs are {', '.join(JOBS)}")


def _label(slot: datetime, manual: bool) -> str:
    return "manual" if manual else f"slot {_iso(slot)}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
