"""Real `flask --app wsgi scheduler` processes against one PostgreSQL database.

Several schedulers fire every slot; exactly one runs it. A run whose connection is killed
is recorded as failed with nothing half-applied; SIGTERM lets the run in progress finish.
A run is made to stand still by holding its product's row lock from the test.
"""
from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask import current_app
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import JobRun, Reservation, StockMovement
from dashboard.services import Owner

pytestmark = pytest.mark.slow
QUIET = {"ALERTS_INTERVAL": "3600", "RECONCILE_INTERVAL": "3600"}


def clock():
    return datetime.now(timezone.utc)


def wait_for(what, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def overdue_hold(product, quantity=1, key="s"):
    return services.reserve(product.sku, quantity, Owner(session_key=key), ttl_seconds=60,
                            now=clock() - timedelta(minutes=2))


def hold_status(hold_id):
    db.session.rollback()
    return db.session.get(Reservation, hold_id, populate_existing=True).status


def expire_rows():
    db.session.rollback()
    return db.session.scalars(
        select(JobRun).where(JobRun.job == "expire").order_by(JobRun.id)).all()


def test_three_schedulers_run_each_slot_exactly_once(schedulers, product_factory):
    processes = [schedulers(ALERTS_INTERVAL="2", RECONCILE_INTERVAL="3") for _ in range(3)]
    for process in processes:
        wait_for("the scheduler's first heartbeat", lambda p=process: schedulers.alive(p))
    products = [product_factory(on_hand=1000) for _ in range(10)]
    # Holds expiring continuously over the next ~6 seconds.
    start = clock()
    holds = []
    for i in range(120):
        expires = start + timedelta(seconds=i * 0.05)
        holds.append(services.reserve(
            products[i % 10].sku, 1 + i % 3, Owner(session_key=f"k{i}"), ttl_seconds=60,
            now=expires - timedelta(seconds=60)))
    hold_ids = [h.id for h in holds]
    wait_for("every hold to expire", lambda: all(hold_status(i) == "expired" for i in hold_ids))
    time.sleep(2)  # a few more contended slots with nothing to do
    for process in processes:
        process.send_signal(signal.SIGTERM)
    assert [p.wait(timeout=30) for p in processes] == [0, 0, 0], schedulers.logs()

    db.session.rollback()
    all_runs = db.session.scalars(select(JobRun)).all()
    per_slot = Counter((r.job, r.slot_at) for r in all_runs)
    assert set(per_slot.values()) == {1}
    assert {r.status for r in all_runs} == {"ok"}, [r.error for r in all_runs if r.error]
    expire_runs = [r for r in all_runs if r.job == "expire"]
    assert len(expire_runs) >= 4
    assert all(r.slot_at.microsecond == 0 for r in expire_runs)
    assert sum(json.loads(r.detail)["holds_expired"] for r in expire_runs) == len(hold_ids)
    # Each hold expired exactly once in the ledger; counters, holds and ledger agree.
    expiries = Counter(db.session.scalars(
        select(StockMovement.reservation_id).where(StockMovement.kind == "expire")))
    assert sorted(expiries) == sorted(hold_ids) and set(expiries.values()) == {1}
    assert all(p.reserved == 0 for p in db.session.scalars(select(type(products[0]))))
    assert services.check() == []
    print("expire runs per process:", Counter(r.host for r in expire_runs))


def test_a_run_whose_connection_is_killed_is_recorded_failed_and_applies_nothing(
        schedulers, locker, product_factory):
    product = product_factory(on_hand=10)
    hold = overdue_hold(product, 3)
    locker(product.id)
    process = schedulers(**QUIET)
    pid = wait_for("the expiry run to wait for the product lock", locker.blocked_backend)

    with locker.engine.connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    failed = wait_for("the failed run to be recorded",
                      lambda: [r for r in expire_rows() if r.status == "failed"])
    assert "terminat" in failed[0].error
    # Still locked by us: the batch was rolled back, not half-applied.
    assert hold_status(hold.id) == "active"
    assert db.session.scalar(select(func.count()).select_from(StockMovement)
                             .where(StockMovement.kind == "expire")) == 0
    locker.release()

    wait_for("a later slot to expire the hold", lambda: hold_status(hold.id) == "expired")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, schedulers.logs()
    runs = expire_rows()
    assert runs[0].status == "failed" and runs[-1].status == "ok"
    assert {r.status for r in runs[1:]} == {"ok"}
    assert db.session.get(type(product), product.id, populate_existing=True).reserved == 0
    assert services.check() == []
    assert "failed after" in schedulers.logs()


def test_sigterm_lets_the_run_in_progress_finish_then_exits_cleanly(
        schedulers, locker, product_factory):
    product = product_factory(on_hand=10)
    hold = overdue_hold(product, 2)
    locker(product.id)
    process = schedulers(**QUIET)
    wait_for("the expiry run to wait for the product lock", locker.blocked_backend)

    process.send_signal(signal.SIGTERM)
    stopped_at = clock()
    time.sleep(1.5)
    assert process.poll() is None  # still finishing its run
    locker.release()
    assert process.wait(timeout=30) == 0, schedulers.logs()

    runs = expire_rows()
    finished = [r for r in runs if json.loads(r.detail or "{}").get("holds_expired")]
    assert len(finished) == 1 and finished[0].status == "ok"
    assert {r.status for r in runs} == {"ok"}  # nothing left "running"
    assert all(r.started_at < stopped_at for r in runs)  # no run started after SIGTERM
    assert hold_status(hold.id) == "expired"
    assert services.check() == []


@pytest.mark.direct
def test_slots_missed_while_the_database_is_unreachable_are_recorded_when_it_returns(
        schedulers, database_url):
    process = schedulers(**QUIET)
    wait_for("a first successful run", lambda: [r for r in expire_rows() if r.status == "ok"])
    name = sa.engine.make_url(database_url).database
    admin = sa.create_engine(sa.engine.make_url(database_url).set(database="postgres"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                 " WHERE datname = :name"), {"name": name})
        wait_for("two slots to fail while the database is away",
                 lambda: schedulers.logs().count("failed before it started") >= 2)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        db.session().invalidate()  # our own connections were terminated too
        db.engine.dispose()

    def reachable():
        # Through PgBouncer the first logins after the outage may still be refused ("server
        # login has been failing, try again later") until its next server login succeeds.
        try:
            return db.session.execute(sa.text("SELECT 1")).scalar() == 1
        except sa.exc.OperationalError:
            db.session().invalidate()
            return False
        finally:
            db.session.rollback()
    wait_for("the database to be reachable again", reachable)

    def failed_then_ok():
        runs = expire_rows()
        failed = [r for r in runs if r.status == "failed"]
        return failed and runs[-1].status == "ok" and runs[-1].slot_at > failed[-1].slot_at
    wait_for("the missed slots to be recorded and a later slot to succeed", failed_then_ok)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, schedulers.logs()
    failed = [r for r in expire_rows() if r.status == "failed"]
    assert len(failed) >= 2
    assert all(r.error.startswith("could not run: OperationalError") for r in failed)
    if current_app.config["DATABASE_POOLER"] == "direct":
        # Through PgBouncer the heartbeat waits for a server connection instead of failing.
        assert "heartbeat not written" in schedulers.logs()
