"""/healthz: the database and the scheduler's heartbeat; /healthz/web: the database only."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard import create_app
from dashboard.extensions import db
from dashboard.services import jobs
from tests.helpers.app import app_config

DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def clock():
    return datetime.now(timezone.utc)


def test_healthy_with_a_recent_heartbeat(app):
    jobs.beat(clock() - timedelta(seconds=5))
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert 5 <= body["scheduler"]["age_seconds"] < 60
    assert body["scheduler"]["limit_seconds"] == 3 * app.config["EXPIRE_INTERVAL"]
    assert response.headers["Cache-Control"] == "no-store"


def test_unavailable_before_any_scheduler_has_run(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["reason"] == "scheduler never seen"


def test_unavailable_when_the_scheduler_has_gone_silent(app):
    silent_for = 3 * app.config["EXPIRE_INTERVAL"] + 10
    jobs.beat(clock() - timedelta(seconds=silent_for))
    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok"
    assert body["reason"].startswith("scheduler silent for")


def test_the_freshest_of_several_schedulers_counts(app):
    jobs.beat(clock() - timedelta(hours=1), name="old-host:1")
    jobs.beat(clock(), name="new-host:2")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["scheduler"]["name"] == "new-host:2"


def test_unavailable_when_the_database_is_unreachable():
    down = create_app(app_config(DEAD_DATABASE))
    for path in ("/healthz", "/healthz/web"):
        response = down.test_client().get(path)
        assert response.status_code == 503
        assert response.get_json()["reason"].startswith("database unreachable")
    with down.app_context():
        db.engine.dispose()


def test_web_check_ignores_the_scheduler(app):
    response = app.test_client().get("/healthz/web")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
