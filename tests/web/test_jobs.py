"""Jobs page: recent runs, next run, failures, run now, drift and its audited repair."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from dashboard import services
from dashboard.extensions import db
from dashboard.models import JobRun, Product, StockMovement
from dashboard.services import SYSTEM, Owner
from tests.helpers.web import HX


def test_jobs_page_full_and_partial_with_no_runs_yet(manager):
    full = manager.get("/jobs")
    assert full.status_code == 200 and b"<html" in full.data
    body = full.get_data(as_text=True)
    assert body.count("No runs of") == 3 and "row(s)" not in body
    assert "No scheduler yet" in body and "not scheduled" in body
    part = manager.get("/jobs", headers=HX)
    assert b"<html" not in part.data and b"Run expire now" in part.data


def test_run_now_expires_overdue_holds_and_records_who(manager, product_factory):
    product = product_factory(on_hand=5)
    long_ago = datetime(2020, 1, 1, tzinfo=timezone.utc)
    services.reserve(product.sku, 2, Owner(session_key="s"), actor=SYSTEM, now=long_ago)
    response = manager.post("/jobs/expire/run", headers=HX)
    assert response.status_code == 200
    trigger = json.loads(response.headers["HX-Trigger"])
    assert trigger["toast"]["level"] == "success"
    assert trigger["toast"]["message"] == "Expire ran: 1 row affected."
    assert "stock-changed" in trigger
    body = response.get_data(as_text=True)
    assert "OK" in body and manager.user.name in body and "holds expired 1" in body
    run = db.session.scalars(select(JobRun)).one()
    assert (run.job, run.status, run.triggered_by_id) == ("expire", "ok", manager.user.id)
    assert db.session.get(Product, product.id).reserved == 0


def test_a_failed_run_shows_as_a_failure(manager, now):
    db.session.add(JobRun(job="alerts", slot_at=now, started_at=now, finished_at=now,
                          status="failed", error="database went away\ntraceback...",
                          rows_affected=0))
    db.session.commit()
    body = manager.get("/jobs").get_data(as_text=True)
    assert "Last failure" in body and "database went away" in body and "traceback" not in body


def test_unknown_job_is_a_404_and_changes_nothing(manager):
    assert manager.post("/jobs/<script>/run").status_code == 404
    assert manager.post("/jobs/nope/run", headers=HX).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(JobRun)) == 0


@pytest.mark.parametrize("role", ["viewer", "merchandiser", "support"])
def test_only_managers_and_admins_run_jobs_or_repair(client_for, role):
    client = client_for(role)
    assert client.post("/jobs/expire/run").status_code == 403
    assert client.post("/jobs/reconcile/repair", data={"reason": "x"}).status_code == 403
    assert b"Run expire now" not in client.get("/jobs").data
    assert db.session.scalar(select(func.count()).select_from(JobRun)) == 0


def _drift(product) -> None:
    """Counter drift as a bug or a manual SQL fix outside the app would leave it."""
    db.session.execute(update(Product).where(Product.id == product.id).values(reserved=3))
    db.session.commit()


def test_drift_report_and_repair_with_a_reason(manager, product_factory, now):
    product = product_factory(sku="DRIFT-1", on_hand=5)
    services.reserve(product.sku, 1, Owner(session_key="s"), actor=SYSTEM, now=now)
    _drift(product)
    assert "Not checked yet" in manager.get("/jobs/reconcile/drift", headers=HX).get_data(
        as_text=True)
    checked = manager.post("/jobs/reconcile/run", data={"panel": "drift"}, headers=HX)
    assert checked.status_code == 200 and "DRIFT-1" in checked.get_data(as_text=True)
    # The reconcile job's runs table comes along out of band, with this run in it.
    assert re.search(r'<section class="card job" id="job-reconcile"[^>]*hx-swap-oob="true"',
                     checked.get_data(as_text=True))
    assert "on_hand" not in checked.get_data(as_text=True)
    report = manager.get("/jobs/reconcile/drift", headers=HX).get_data(as_text=True)
    assert "DRIFT-1" in report and "Repair drift" in report
    assert b"<html" in manager.get("/jobs/reconcile/drift").data  # a full page without htmx

    response = manager.post("/jobs/reconcile/repair", data={"reason": "after outage"},
                            headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "DRIFT-1: reserved 3 -&gt; 1" in body and "No drift" in body
    assert "(the totals of its locations)" in body  # the level was right: the totals follow it
    assert db.session.get(Product, product.id).reserved == 1
    repairs = db.session.scalars(select(StockMovement).where(StockMovement.kind == "repair")).all()
    assert repairs and all(r.actor_staff_id == manager.user.id and "after outage" in r.reason
                           for r in repairs)
    assert services.check() == []


@pytest.mark.parametrize("reason", ["", "  ", "r" * 501])
def test_repair_refuses_a_missing_or_bad_reason(manager, product_factory, now, reason):
    product = product_factory(on_hand=5)
    services.reserve(product.sku, 1, Owner(session_key="s"), actor=SYSTEM, now=now)
    _drift(product)
    manager.post("/jobs/reconcile/run", data={"panel": "drift"}, headers=HX)
    response = manager.post("/jobs/reconcile/repair", data={"reason": reason}, headers=HX)
    assert response.status_code == 422
    assert 'class="error"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Product, product.id).reserved == 3
    assert db.session.scalar(select(func.count()).select_from(StockMovement)
                             .where(StockMovement.kind == "repair")) == 0



def test_the_scheduler_running_with_no_runs_yet_says_when_it_will_run(manager):
    from dashboard.services.jobs import beat

    beat(datetime.now(timezone.utc))
    db.session.commit()
    body = manager.get("/jobs").get_data(as_text=True)
    assert "Scheduler running" in body
    assert "once the scheduler is started" not in body and "or start the scheduler" not in body
    assert body.count("No runs of") == 3 and "The scheduler runs it" in body

