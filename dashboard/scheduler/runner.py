"""The scheduler process: APScheduler 3 running the jobs on aligned slots, and a heartbeat.

Both `flask --app wsgi scheduler` (production: one dedicated process) and the in-process
scheduler of `flask run` (local development) are built here. Triggers are aligned to the
epoch, so every process fires a job at the same slot boundaries; which one runs the slot
is decided in the database (`services.jobs.run_scheduled`). The scheduler only calls
services; nothing but this package's CLI imports it.
"""
from __future__ import annotations

import atexit
import logging
import signal
import time
from datetime import datetime, timezone

import click
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from flask.helpers import get_debug_flag
from werkzeug.serving import is_running_from_reloader

from ..config import inprocess_scheduler
from ..extensions import db
from ..schedule import EPOCH
from ..services import delivery, jobs
from ..services.job_runs import HOST, one_line

log = logging.getLogger("stockroom.scheduler")


def build(app: Flask) -> tuple[BackgroundScheduler, ThreadPoolExecutor]:
    """A scheduler with the three jobs and the heartbeat; not started."""
    # APScheduler logs every run at INFO; our own one line per run says more.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    executor = ThreadPoolExecutor(max_workers=4)
    scheduler = BackgroundScheduler(
        timezone=timezone.utc,
        executors={"default": executor},
        job_defaults={
            "coalesce": True,  # missed slots collapse into one run
            "max_instances": 1,  # a slow run is never overlapped by the next slot's
            "misfire_grace_time": None,  # a late wake-up (suspended VM, busy host) still runs
        },
    )
    for name in jobs.JOBS:
        scheduler.add_job(
            _run, _every(app.config[f"{name.upper()}_INTERVAL"]), args=(app, name),
            id=name, name=name,
        )
    # Not slot-claimed like the jobs: every scheduler delivers, each claiming different
    # deliveries (FOR UPDATE SKIP LOCKED), so one process's slow sends never stall the rest.
    scheduler.add_job(
        _deliver, _every(app.config["NOTIFY_INTERVAL"]), args=(app,), id="notify",
        name="notify",
    )
    scheduler.add_job(
        _beat, _every(heartbeat_seconds(app)), args=(app,), id="heartbeat", name="heartbeat",
        next_run_time=datetime.now(timezone.utc),
    )
    return scheduler, executor


def heartbeat_seconds(app: Flask) -> int:
    """Beat several times within the silence limit of three expiry intervals."""
    return max(1, min(10, app.config["EXPIRE_INTERVAL"]))


def _every(seconds: int) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=timezone.utc)


def _run(app: Flask, name: str) -> None:
    with app.app_context():
        try:
            jobs.run_scheduled(name, datetime.now(timezone.utc))
        finally:
            db.session.remove()


def _deliver(app: Flask) -> None:
    with app.app_context():
        try:
            report = delivery.deliver_due(datetime.now(timezone.utc))
        except Exception as error:
            db.session.rollback()
            log.error("notifications not delivered this time: %s", one_line(error))
            return
        finally:
            db.session.remove()
        if any(report.as_dict().values()):
            log.info("notify: %s", " ".join(f"{k}={v}" for k, v in report.as_dict().items()))
        for line in report.errors[:10]:
            log.warning("notify: %s", line)


def _beat(app: Flask) -> None:
    with app.app_context():
        try:
            jobs.beat(datetime.now(timezone.utc))
        except Exception as error:
            log.error("heartbeat not written: %s", one_line(error))
        finally:
            db.session.remove()


def serve(app: Flask) -> None:
    """Run until SIGTERM or SIGINT; a run in progress finishes (or stops between batches)."""
    scheduler, executor = build(app)

    def stop(signum, _frame):
        # Only set a flag here: taking a lock inside a signal handler can deadlock.
        jobs.stopping.set()
        # A second signal stops at once; PostgreSQL rolls back the open transaction.
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backend = db.engine.dialect.name
    log.info(
        "scheduler %s started: expire every %ss, alerts every %ss, reconcile every %ss,"
        " notify every %ss (%s)",
        HOST, app.config["EXPIRE_INTERVAL"], app.config["ALERTS_INTERVAL"],
        app.config["RECONCILE_INTERVAL"], app.config["NOTIFY_INTERVAL"], backend,
    )
    if backend != "postgresql":
        log.warning("SQLite: run one scheduler at a time, on the host that holds the file")
    scheduler.start()
    while not jobs.stopping.is_set():
        time.sleep(0.2)
    log.info("scheduler %s stopping: letting runs in progress finish", HOST)
    scheduler.shutdown(wait=False)
    executor.shutdown(wait=True)
    log.info("scheduler %s stopped", HOST)


def start_with_flask_run(app: Flask) -> BackgroundScheduler | None:
    """Under `flask run`, run the jobs in the serving process (once, not per reloader process)."""
    if not in_process_wanted():
        return None
    scheduler, executor = build(app)
    scheduler.start()
    log.info("in-process scheduler started (flask run); "
             "STOCKROOM_INPROCESS_SCHEDULER=0 turns it off")

    def stop():
        jobs.stopping.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        executor.shutdown(wait=True)

    atexit.register(stop)
    return scheduler


def in_process_wanted() -> bool:
    """True in the process that serves `flask run`, unless STOCKROOM_INPROCESS_SCHEDULER=0.

    Never under gunicorn or any other command (they have no click `run` context).
    """
    if not inprocess_scheduler():
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.info_name != "run":
        return False
    reloader = ctx.params.get("reload")
    if reloader is None:
        reloader = get_debug_flag()
    # With the reloader, the parent process only watches files; its child serves.
    return not reloader or is_running_from_reloader()
