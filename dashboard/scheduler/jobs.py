"""Scheduled jobs (SPEC §8): hold expiry, alert evaluation, reconciliation.

Each run of a job is recorded in `job_runs`. A scheduled run belongs to a slot, the start
of its interval (`slot_at = floor(now / interval) * interval`), and the unique
(job, slot_at) row is claimed before the job runs, so however many scheduler processes and
hosts fire for the same slot, exactly one runs it. On PostgreSQL a session-level advisory
lock per job also keeps runs of one job from overlapping (a slow run of slot N and the run
of slot N+1, or a manual run); on SQLite, one writer at a time and the unique claim in the
one database file do the same within a host.

JOBS: job name -> callable(now) -> dict of what the run did.
run_job(name, *, now, triggered_by=None) -> JobRun     one manual run now ("run now", CLI)
run_scheduled(name, now) -> JobRun | None              the scheduler's run of now's slot
next_run_at(name, now) -> datetime | None              next slot, if a scheduler is alive
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import traceback
import zlib
from collections import deque
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .. import services
from ..extensions import db
from ..models import JobRun, LoginAttempt, SchedulerHeartbeat, StaffUser

log = logging.getLogger("stockroom.jobs")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
HOST = f"{socket.gethostname()}:{os.getpid()}"[:100]

# Housekeeping done by the alerts job: how long finished records are kept.
KEEP_JOB_RUNS = timedelta(days=14)
KEEP_LOGIN_ATTEMPTS = timedelta(days=1)
KEEP_SILENT_HEARTBEATS = timedelta(days=1)

# Set when the scheduler process is asked to stop: a long expiry stops between batches.
stopping = threading.Event()

# Outcomes that could not be written while the database was down; written at the next chance:
# runs that failed before they could claim their slot, and finishes of claimed runs.
_unrecorded: deque[dict] = deque(maxlen=1000)
_unfinished: dict[int, dict] = {}
_local_locks = {name: threading.Lock() for name in ("expire", "alerts", "reconcile")}


# --- the jobs --------------------------------------------------------------------------

def expire(now: datetime) -> dict:
    """Expire overdue holds, one committed batch at a time (never a product lock for longer)."""
    batch = current_app.config["EXPIRE_BATCH"]
    total = services.ExpiryResult()
    while True:
        result = services.expire_due(now, batch=batch, max_batches=1)
        total += result
        if result.holds < batch:
            break
        if stopping.is_set():
            # Every batch so far is committed; the next run picks up the rest.
            return {**total.as_dict(), "stopped_early": True}
    return total.as_dict()


def alerts(now: datetime) -> dict:
    """Evaluate every product's alerts (catches changes made outside the app), then tidy up."""
    changes = services.evaluate_alerts(now=now).as_dict()
    return {**changes, "pruned": prune(now)}


def reconcile(now: datetime) -> dict:
    """Report drift between counters, active holds and the ledger. Never repairs."""
    drift = services.reconcile()
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


def prune(now: datetime) -> dict:
    """Delete records nobody needs any more, in one short transaction."""
    try:
        pruned = {
            "job_runs": db.session.execute(
                delete(JobRun).where(JobRun.started_at < now - KEEP_JOB_RUNS,
                                     JobRun.status != "running")
            ).rowcount,
            "login_attempts": db.session.execute(
                delete(LoginAttempt).where(LoginAttempt.attempted_at < now - max(
                    KEEP_LOGIN_ATTEMPTS,
                    timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])))
            ).rowcount,
            "heartbeats": db.session.execute(
                delete(SchedulerHeartbeat).where(
                    SchedulerHeartbeat.beat_at < now - KEEP_SILENT_HEARTBEATS)
            ).rowcount,
        }
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    # The API owns how long a storefront retry is answered from memory.
    from ..api.idempotency import prune_idempotency_keys

    pruned["idempotency_keys"] = prune_idempotency_keys(now)
    return pruned


# --- slots ----------------------------------------------------------------------------

def interval(name: str) -> int:
    return int(current_app.config[f"{name.upper()}_INTERVAL"])


def slot_start(now: datetime, seconds: int) -> datetime:
    """Start of the interval slot holding `now`: floor(now / interval) * interval (UTC)."""
    elapsed = int((now - EPOCH).total_seconds() // seconds)
    return EPOCH + timedelta(seconds=elapsed * seconds)


def _manual_slot(now: datetime) -> datetime:
    # Scheduled slots are whole seconds; a manual run takes a sub-second slot of its own.
    return now + timedelta(microseconds=1) if now.microsecond == 0 else now


def last_heartbeat() -> SchedulerHeartbeat | None:
    return db.session.scalars(
        select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.beat_at.desc()).limit(1)
    ).first()


def silence_limit() -> timedelta:
    """A scheduler silent for longer than three expiry intervals is considered down."""
    return timedelta(seconds=3 * interval("expire"))


def next_run_at(name: str, now: datetime) -> datetime | None:
    """When the scheduler will next run `name`; None while no scheduler is alive."""
    beat = last_heartbeat()
    if beat is None or now - beat.beat_at > silence_limit():
        return None
    return slot_start(now, interval(name)) + timedelta(seconds=interval(name))


def beat(now: datetime, name: str = HOST[:50]) -> None:
    """Record that this scheduler process is alive (one row per process)."""
    try:
        row = db.session.get(SchedulerHeartbeat, name)
        if row is None:
            db.session.add(SchedulerHeartbeat(
                name=name, beat_at=now, host=socket.gethostname()[:100], pid=os.getpid()))
        else:
            row.beat_at = now
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


# --- running --------------------------------------------------------------------------

def run_job(name: str, *, now: datetime, triggered_by: StaffUser | None = None) -> JobRun:
    """Run `name` once now, outside the schedule, in a slot of its own.

    If a run of the same job is in progress elsewhere, the run is recorded as skipped.
    """
    _known(name)
    slot = _manual_slot(now)
    with _job_lock(name) as acquired:
        if not acquired:
            return _record_skipped(name, slot, triggered_by,
                                   f"another {name} run was in progress; try again shortly")
        while True:
            run_id = _claim(name, slot, triggered_by)
            if run_id is not None:
                break
            slot += timedelta(microseconds=1)  # two manual runs in the same microsecond
        return _execute(name, run_id, now, manual=True, slot=slot)


def run_scheduled(name: str, now: datetime) -> JobRun | None:
    """The scheduler's run of the slot holding `now`; None if another process has it."""
    _known(name)
    slot = slot_start(now, interval(name))
    try:
        with _job_lock(name) as acquired:
            if not acquired:
                log.debug("%s slot %s: another process is running %s", name, slot, name)
                return None
            run_id = _claim(name, slot, None)
            if run_id is None:
                log.debug("%s slot %s: already claimed", name, slot)
                return None
            return _execute(name, run_id, now, manual=False, slot=slot)
    except Exception as error:
        # Could not even claim (the database is down): log now, record when it is back.
        db.session.rollback()
        started = _clock()
        _unrecorded.append({
            "job": name, "slot_at": slot, "started_at": started, "finished_at": started,
            "status": "failed", "rows_affected": 0, "host": HOST,
            "error": f"could not run: {one_line(error)}",
        })
        log.error("job %s slot %s failed before it started: %s", name, _iso(slot), one_line(error))
        return None


def _execute(name: str, run_id: int, now: datetime, *, manual: bool, slot: datetime) -> JobRun:
    started = _clock()
    try:
        detail = JOBS[name](now)
    except Exception as error:
        db.session.rollback()
        finished = _clock()
        message = f"{one_line(error)}\n\n{traceback.format_exc()}"[:8000]
        log.error("job %s %s run %d failed after %.2fs: %s", name, _label(slot, manual), run_id,
                  (finished - started).total_seconds(), one_line(error))
        _finish(run_id, status="failed", error=message, finished=finished,
                detail={"manual": True} if manual else None)
        return _reload(run_id, manual)
    finished = _clock()
    if manual:
        detail = {**detail, "manual": True}
    count = rows_affected(name, detail)
    log.info("job %s %s run %d ok in %.2fs: %s", name, _label(slot, manual), run_id,
             (finished - started).total_seconds(),
             " ".join(f"{k}={v}" for k, v in detail.items()
                      if k != "manual" and not isinstance(v, (list, dict))))
    _finish(run_id, status="ok", detail=detail, rows=count, finished=finished)
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


def _finish(run_id: int, *, status: str, finished: datetime, detail: dict | None = None,
            rows: int = 0, error: str | None = None) -> None:
    values = {"status": status, "finished_at": finished, "rows_affected": rows,
              "detail": json.dumps(detail) if detail is not None else None, "error": error}
    try:
        db.session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))
        db.session.commit()
    except Exception as write_error:
        db.session.rollback()
        _unfinished[run_id] = values
        log.error("job run %d: could not record %s: %s", run_id, status, one_line(write_error))


def _claim(name: str, slot: datetime, triggered_by: StaffUser | None) -> int | None:
    """Insert the (job, slot) row; None if that slot is already taken. Commits."""
    try:
        _write_unrecorded()
        statement = _insert().values(
            job=name, slot_at=slot, started_at=_clock(), status="running", rows_affected=0,
            host=HOST, triggered_by_id=triggered_by.id if triggered_by is not None else None,
        ).on_conflict_do_nothing(index_elements=["job", "slot_at"]).returning(JobRun.id)
        run_id = db.session.execute(statement).scalar()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return run_id


def _record_skipped(name: str, slot: datetime, triggered_by: StaffUser | None, why: str) -> JobRun:
    now = _clock()
    row = JobRun(job=name, slot_at=slot, started_at=now, finished_at=now, status="skipped",
                 rows_affected=0, host=HOST, detail=json.dumps({"manual": True, "reason": why}),
                 triggered_by_id=triggered_by.id if triggered_by is not None else None)
    db.session.add(row)
    db.session.commit()
    log.info("job %s manual run skipped: %s", name, why)
    return row


def _write_unrecorded() -> None:
    """Write outcomes kept while the database was unreachable (in the caller's transaction)."""
    rows = list(_unrecorded)
    if rows:
        db.session.execute(_insert().values(rows).on_conflict_do_nothing(
            index_elements=["job", "slot_at"]))
    finishes = dict(_unfinished)
    for run_id, values in finishes.items():
        db.session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))
    db.session.flush()
    for row in rows:
        with suppress(ValueError):  # another thread wrote it too (ON CONFLICT kept one)
            _unrecorded.remove(row)
    for run_id in finishes:
        _unfinished.pop(run_id, None)


@contextmanager
def _job_lock(name: str):
    """One run of a job at a time: a PostgreSQL advisory lock, else an in-process lock."""
    if db.engine.dialect.name != "postgresql":
        acquired = _local_locks[name].acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                _local_locks[name].release()
        return
    key = zlib.crc32(f"stockroom.job.{name}".encode())
    # A connection of its own in autocommit: the lock spans the job's many transactions.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        acquired = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        try:
            if acquired:
                _fail_interrupted(name)
            yield acquired
        finally:
            if acquired:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                except Exception:
                    conn.invalidate()  # never return a connection still holding the lock


def _fail_interrupted(name: str) -> None:
    """Holding the job's lock, any row still 'running' belongs to a process that died."""
    try:
        _write_unrecorded()
        db.session.execute(
            update(JobRun).where(JobRun.job == name, JobRun.status == "running").values(
                status="failed", finished_at=func.coalesce(JobRun.finished_at, _clock()),
                error="interrupted: the process running it stopped before it finished",
            )
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _insert():
    dialect = db.engine.dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(JobRun)


def _known(name: str) -> None:
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}; jobs are {', '.join(JOBS)}")


def _clock() -> datetime:
    return datetime.now(timezone.utc)


def _label(slot: datetime, manual: bool) -> str:
    return "manual" if manual else f"slot {_iso(slot)}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def one_line(error: BaseException) -> str:
    """An error as one log-friendly line: its type and the first line of its message."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}"[:500]
