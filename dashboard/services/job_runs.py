"""The `job_runs` records behind `jobs`: slot claims, finishes, skips, and the job locks.

The unique (job, slot_at) row is claimed before a job runs, so however many scheduler
processes and hosts fire for the same slot, exactly one runs it. On PostgreSQL a
transaction-scoped advisory lock per job also keeps runs of one job from overlapping (a
slow run of slot N and the run of slot N+1, or a manual run); it holds through a
transaction pooler such as PgBouncer, where a session lock could be unlocked on another
server connection. On SQLite, one writer at a time and the unique claim in the one
database file do the same within a host.

Outcomes that cannot be written while the database is down are kept in memory (runs that
failed before they could claim their slot, finishes of claimed runs) and written at the
next claim.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import zlib
from collections import deque
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import db
from ..models import JOB_NAMES, JobRun, StaffUser
from .transaction import transaction

log = logging.getLogger("stockroom.jobs")

HOST = f"{socket.gethostname()}:{os.getpid()}"[:100]

_unrecorded: deque[dict] = deque(maxlen=1000)
_unfinished: dict[int, dict] = {}
_local_locks = {name: threading.Lock() for name in JOB_NAMES}


def claim(name: str, slot: datetime, triggered_by: StaffUser | None) -> int | None:
    """Insert the (job, slot) row; None if that slot is already taken. Commits."""
    with transaction():
        _write_unrecorded()
        statement = _insert().values(
            job=name, slot_at=slot, started_at=clock(), status="running", rows_affected=0,
            host=HOST, triggered_by_id=triggered_by.id if triggered_by is not None else None,
        ).on_conflict_do_nothing(index_elements=["job", "slot_at"]).returning(JobRun.id)
        return db.session.execute(statement).scalar()


def finish(run_id: int, *, status: str, finished: datetime, detail: dict | None = None,
           rows: int = 0, error: str | None = None) -> None:
    """Record how a claimed run ended; kept for later if the database cannot take it now."""
    values = {"status": status, "finished_at": finished, "rows_affected": rows,
              "detail": json.dumps(detail) if detail is not None else None, "error": error}
    try:
        with transaction():
            db.session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))
    except Exception as write_error:
        _unfinished[run_id] = values
        log.error("job run %d: could not record %s: %s", run_id, status, one_line(write_error))


def record_unclaimed_failure(name: str, slot: datetime, error: BaseException) -> None:
    """A run that failed before it could claim its slot (the database is down): kept in
    memory, written with the next claim."""
    started = clock()
    _unrecorded.append({
        "job": name, "slot_at": slot, "started_at": started, "finished_at": started,
        "status": "failed", "rows_affected": 0, "host": HOST,
        "error": f"could not run: {one_line(error)}",
    })


def record_skipped(name: str, slot: datetime, triggered_by: StaffUser | None,
                   why: str) -> JobRun:
    now = clock()
    row = JobRun(job=name, slot_at=slot, started_at=now, finished_at=now, status="skipped",
                 rows_affected=0, host=HOST, detail=json.dumps({"manual": True, "reason": why}),
                 triggered_by_id=triggered_by.id if triggered_by is not None else None)
    with transaction():
        db.session.add(row)
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
def job_lock(name: str):
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
    # A transaction of its own holds the lock across the job's many transactions; it keeps
    # one server connection even through a transaction pooler, and ending it unlocks.
    with db.engine.connect() as conn:
        acquired = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar()
        try:
            if acquired:
                _fail_interrupted(name)
            yield acquired
        finally:
            try:
                conn.rollback()
            except Exception:
                conn.invalidate()  # never return a connection still holding the lock


def _fail_interrupted(name: str) -> None:
    """Holding the job's lock, any row still 'running' belongs to a process that died."""
    with transaction():
        _write_unrecorded()
        db.session.execute(
            update(JobRun).where(JobRun.job == name, JobRun.status == "running").values(
                status="failed", finished_at=func.coalesce(JobRun.finished_at, clock()),
                error="interrupted: the process running it stopped before it finished",
            )
        )


def _insert():
    dialect = db.engine.dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(JobRun)


def clock() -> datetime:
    """The wall clock, for how long a run took (the slot's `now` is given by the caller)."""
    return datetime.now(timezone.utc)


def manual_slot(now: datetime) -> datetime:
    # Scheduled slots are whole seconds; a manual run takes a sub-second slot of its own.
    return now + timedelta(microseconds=1) if now.microsecond == 0 else now


def one_line(error: BaseException) -> str:
    """An error as one log-friendly line: its type and the first line of its message."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}"[:500]
