"""Scheduled jobs in one process: slots, recording of runs, failures, next run, the CLI."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import click
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from dashboard import create_app, services
from dashboard.extensions import db
from dashboard.models import JobRun, LoginAttempt, Reservation, StockMovement
from dashboard.queries.jobs import next_run_at
from dashboard.schedule import slot_start
from dashboard.scheduler import runner
from dashboard.services import Owner, jobs
from tests.helpers.app import app_config

UTC = timezone.utc
DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def overdue_hold(product, quantity, now, session_key="s1"):
    """A hold that expired a minute before `now`."""
    return services.reserve(product.sku, quantity, Owner(session_key=session_key),
                            ttl_seconds=60, now=now - timedelta(minutes=2))


def runs(job=None):
    query = select(JobRun).order_by(JobRun.id)
    if job:
        query = query.where(JobRun.job == job)
    return db.session.scalars(query).all()


def at(hour, minute, second=0, micro=0, tz=UTC):
    return datetime(2026, 11, 21, hour, minute, second, micro, tzinfo=tz)


@pytest.mark.parametrize("moment, seconds, slot", [
    (at(12, 0, 29, 999999), 30, at(12, 0)),
    (at(12, 0, 30), 30, at(12, 0, 30)),
    (at(12, 9, 59), 600, at(12, 0)),
    (at(12, 0, 0, 500000), 1, at(12, 0)),
    (at(13, 0, 1, tz=timezone(timedelta(hours=1))), 60, at(12, 0)),
])
def test_slot_is_the_start_of_the_interval_holding_now(moment, seconds, slot):
    assert slot_start(moment, seconds) == slot


def test_expire_run_records_what_it_did(product_factory, now):
    product = product_factory(on_hand=10)
    overdue_hold(product, 3, now)
    overdue_hold(product, 2, now, session_key="s2")

    run = jobs.run_scheduled("expire", now)

    assert run.status == "ok" and run.error is None
    assert run.slot_at == now  # 12:00:00 is a 30 s boundary
    assert run.rows_affected == 2
    detail = json.loads(run.detail)
    assert (detail["holds_expired"], detail["units_returned"]) == (2, 5)
    assert run.finished_at >= run.started_at
    assert db.session.scalar(select(func.count()).select_from(Reservation)
                             .where(Reservation.status == "active")) == 0
    assert services.check() == []


def test_a_slot_runs_once_however_often_it_fires(product_factory, now):
    overdue_hold(product_factory(), 1, now)
    assert jobs.run_scheduled("expire", now + timedelta(seconds=1)) is not None
    overdue_hold(product_factory(), 1, now + timedelta(seconds=2))

    assert jobs.run_scheduled("expire", now + timedelta(seconds=29)) is None  # same slot
    assert len(runs("expire")) == 1
    later = jobs.run_scheduled("expire", now + timedelta(seconds=30))  # next slot
    assert later.status == "ok" and later.rows_affected == 1


def test_manual_runs_take_their_own_slots_and_leave_the_schedule_alone(now, staff_factory):
    manager = staff_factory("manager")
    first = jobs.run_job("alerts", now=now, triggered_by=manager)
    second = jobs.run_job("alerts", now=now)

    assert first.status == second.status == "ok"
    assert len({first.slot_at, second.slot_at, now}) == 3
    assert first.triggered_by_id == manager.id and second.triggered_by_id is None
    assert json.loads(first.detail)["manual"] is True
    scheduled = jobs.run_scheduled("alerts", now)
    assert scheduled is not None and scheduled.slot_at == now


def test_a_failing_run_is_recorded_rolled_back_and_the_next_slot_succeeds(
        product_factory, now, monkeypatch, caplog):
    product = product_factory(on_hand=10)
    overdue_hold(product, 4, now)

    def half_done_then_broken(at):
        db.session.execute(sa.text("UPDATE products SET reserved = 0"))  # not committed
        raise RuntimeError("bug in the job")

    monkeypatch.setitem(jobs.JOBS, "expire", half_done_then_broken)
    failed = jobs.run_scheduled("expire", now)
    monkeypatch.undo()

    assert failed.status == "failed"
    assert failed.error.startswith("RuntimeError: bug in the job")
    assert "Traceback" in failed.error
    assert db.session.get(type(product), product.id).reserved == 4  # nothing half-applied
    assert any("failed" in r.message and r.levelname == "ERROR" for r in caplog.records)
    ok = jobs.run_scheduled("expire", now + timedelta(seconds=30))
    assert ok.status == "ok" and json.loads(ok.detail)["holds_expired"] == 1
    assert services.check() == []


def test_a_run_that_could_not_reach_the_database_is_recorded_when_it_returns(now, app):
    down = create_app(app_config(DEAD_DATABASE))
    with down.app_context():
        assert jobs.run_scheduled("reconcile", now) is None
        db.session.remove()
        down_engine = db.engine
    down_engine.dispose()

    assert jobs.run_scheduled("reconcile", now + timedelta(minutes=10)).status == "ok"
    first, second = runs("reconcile")
    assert (first.slot_at, first.status) == (now, "failed")
    assert first.error.startswith("could not run: OperationalError")
    assert second.status == "ok"


def test_a_long_expiry_stops_between_batches_when_the_scheduler_stops(
        app, product_factory, now, monkeypatch):
    product = product_factory(on_hand=20)
    for i in range(5):
        overdue_hold(product, 1, now, session_key=f"s{i}")
    monkeypatch.setitem(app.config, "EXPIRE_BATCH", 2)
    jobs.stopping.set()
    try:
        stopped = jobs.run_scheduled("expire", now)
    finally:
        jobs.stopping.clear()

    detail = json.loads(stopped.detail)
    assert stopped.status == "ok" and detail["stopped_early"] is True
    assert detail["holds_expired"] == 2  # one whole batch, committed
    assert services.check() == []
    rest = jobs.run_scheduled("expire", now + timedelta(seconds=30))
    assert json.loads(rest.detail)["holds_expired"] == 3


def test_next_run_is_the_next_slot_while_a_scheduler_is_alive(now):
    assert next_run_at("expire", now) is None  # no scheduler has ever beaten
    jobs.beat(now)
    assert next_run_at("expire", now + timedelta(seconds=1)) == now + timedelta(seconds=30)
    assert next_run_at("reconcile", now + timedelta(seconds=1)) == now + timedelta(minutes=10)
    assert next_run_at("expire", now + timedelta(seconds=91)) is None  # silent: down


def test_alerts_run_evaluates_and_prunes_old_records(product_factory, now):
    product = product_factory(on_hand=10, threshold=2)
    db.session.execute(sa.text("UPDATE products SET on_hand = 1 WHERE id = :id"),
                       {"id": product.id})  # changed outside the app: no alert yet
    db.session.add(JobRun(job="expire", slot_at=now - timedelta(days=20),
                          started_at=now - timedelta(days=20), status="ok", rows_affected=0))
    db.session.add(LoginAttempt(email="x@example.com", ip="10.0.0.1",
                                attempted_at=now - timedelta(days=2)))
    db.session.commit()

    run = jobs.run_job("alerts", now=now)

    detail = json.loads(run.detail)
    assert detail["opened"] == 1 and run.rows_affected == 1
    assert detail["pruned"]["job_runs"] == 1 and detail["pruned"]["login_attempts"] == 1
    assert [r.id for r in runs()] == [run.id]


def test_reconcile_reports_drift_and_repairs_nothing(product_factory, now):
    product = product_factory(on_hand=10)
    db.session.execute(sa.text("UPDATE products SET reserved = 3 WHERE id = :id"),
                       {"id": product.id})
    db.session.commit()
    ledger_rows = db.session.scalar(select(func.count()).select_from(StockMovement))

    run = jobs.run_job("reconcile", now=now)

    detail = json.loads(run.detail)
    assert run.status == "ok" and detail["drift"] >= 1 and run.rows_affected == detail["drift"]
    assert product.sku in detail["found"][0]
    assert db.session.get(type(product), product.id).reserved == 3
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == ledger_rows


def test_jobs_run_command_prints_what_the_run_did(app, product_factory, now):
    overdue_hold(product_factory(on_hand=5), 2, datetime.now(UTC))
    result = app.test_cli_runner().invoke(args=["jobs", "run", "expire"])
    assert result.exit_code == 0, result.output
    assert "expire ok" in result.output
    assert "holds_expired: 1" in result.output and "units_returned: 2" in result.output


def test_jobs_run_command_refuses_an_unknown_job(app):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "restock"])
    assert result.exit_code == 2 and "restock" in result.output


# --- PostgreSQL: the advisory lock ---------------------------------------------------------

def job_lock_key(name):
    import zlib
    return zlib.crc32(f"stockroom.job.{name}".encode())


def test_while_another_process_runs_the_job_the_slot_is_left_to_it(other_connection, now):
    key = job_lock_key("expire")
    # As a running job holds it: for its own transaction (which keeps a pooler's connection).
    other_connection.execute(sa.text("BEGIN"))
    other_connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    try:
        assert jobs.run_scheduled("expire", now) is None
        manual = jobs.run_job("expire", now=now)
    finally:
        other_connection.execute(sa.text("ROLLBACK"))

    assert manual.status == "skipped"
    assert "in progress" in json.loads(manual.detail)["reason"]
    assert [r.status for r in runs("expire")] == ["skipped"]  # the slot itself is not taken
    assert jobs.run_scheduled("expire", now).status == "ok"


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(requires_postgres, now):
    db.session.add(JobRun(job="expire", slot_at=now - timedelta(seconds=30),
                          started_at=now - timedelta(seconds=30), status="running",
                          rows_affected=0, host="gone:1"))
    db.session.commit()

    jobs.run_scheduled("expire", now)

    dead, current = runs("expire")
    assert dead.status == "failed" and dead.error.startswith("interrupted")
    assert current.status == "ok"


# --- the in-process scheduler of `flask run` -----------------------------------------------

@pytest.mark.parametrize("command, params, env, wanted", [
    ("run", {"reload": False}, {}, True),
    ("run", {"reload": True}, {}, False),  # the reloader's watching parent
    ("run", {"reload": True}, {"WERKZEUG_RUN_MAIN": "true"}, True),  # its serving child
    ("run", {"reload": False}, {"STOCKROOM_INPROCESS_SCHEDULER": "0"}, False),
    ("scheduler", {}, {}, False),
    ("upgrade", {}, {}, False),
])
def test_only_the_serving_flask_run_process_starts_a_scheduler(
        command, params, env, wanted, monkeypatch):
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.delenv("STOCKROOM_INPROCESS_SCHEDULER", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with click.Context(click.Command(command), info_name=command) as ctx:
        ctx.params.update(params)
        assert runner.in_process_wanted() is wanted


def test_no_scheduler_outside_a_command(monkeypatch):
    monkeypatch.delenv("STOCKROOM_INPROCESS_SCHEDULER", raising=False)
    assert runner.in_process_wanted() is False  # gunicorn, tests, a Python shell


def test_the_built_scheduler_fires_each_job_on_aligned_slots(app):
    scheduler, _executor = runner.build(app)
    triggers = {job.id: job.trigger for job in scheduler.get_jobs()}
    assert set(triggers) == {"expire", "alerts", "reconcile", "notify", "heartbeat"}
    after = datetime(2026, 11, 21, 12, 0, 7, tzinfo=UTC)
    assert triggers["expire"].get_next_fire_time(None, after) == at(12, 0, 30)
    assert triggers["notify"].get_next_fire_time(None, after) == at(12, 0, 10)
    assert triggers["reconcile"].get_next_fire_time(None, after) == at(12, 10)
