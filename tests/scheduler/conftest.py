"""Fixtures of the scheduler tests: real scheduler processes, and the second connection
another process would hold (an advisory lock, a row lock)."""
from __future__ import annotations

import os
import subprocess

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import SchedulerHeartbeat
from tests.helpers.app import ROOT


@pytest.fixture
def schedulers(requires_postgres, database_url, tmp_path):
    """Start scheduler processes; every one is stopped (then killed) at the end."""
    started: list[subprocess.Popen] = []

    def start(**env):
        log = open(tmp_path / f"scheduler-{len(started)}.log", "w")
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "scheduler"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1",
                 "EXPIRE_INTERVAL": "1", **env},
        )
        started.append(process)
        return process

    def alive(process):
        db.session.rollback()
        return db.session.scalar(
            select(SchedulerHeartbeat).where(SchedulerHeartbeat.pid == process.pid))

    start.alive = alive
    start.logs = lambda: "\n".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))
    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def locker(database_url):
    """A second connection that can hold a product's row lock, as a slow transaction would."""
    engine = sa.create_engine(database_url)
    conn = engine.connect()

    def lock(product_id):
        conn.begin()
        conn.execute(sa.text("SELECT id FROM products WHERE id = :id FOR UPDATE"),
                     {"id": product_id})

    def release():
        conn.rollback()

    def blocked_backend():
        """pid of a scheduler backend waiting for a lock in this database, if any."""
        with engine.connect() as other:
            return other.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")).scalar()

    lock.release, lock.blocked_backend, lock.engine = release, blocked_backend, engine
    try:
        yield lock
    finally:
        conn.close()
        engine.dispose()


@pytest.fixture
def other_connection(requires_postgres, database_url):
    """An AUTOCOMMIT connection of its own, as another scheduler process would have."""
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        yield conn
    engine.dispose()
