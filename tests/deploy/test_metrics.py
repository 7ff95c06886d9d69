"""/metrics (Prometheus text), request ids and JSON log lines.

Counters live for the whole test process, so each test compares a scrape before and
after what it does.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta, timezone

import pytest
from flask import g
from prometheus_client.parser import text_string_to_metric_families

from dashboard import create_app, services
from dashboard.extensions import db
from dashboard.observability.logs import JsonFormatter
from dashboard.services import Owner, jobs
from tests.helpers.app import app_config

OUTSIDE = {"REMOTE_ADDR": "203.0.113.50"}
TOKEN = "metrics-token-0123456789"


def clock():
    return datetime.now(timezone.utc)


def scrape(client, **kwargs) -> dict:
    """{(sample name, sorted label pairs): value} of one /metrics answer."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    db.session.rollback()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def api_token(now):
    _, token = services.create_api_client("web shop", now=now)
    return token


def test_requests_are_counted_by_url_rule_and_status_not_by_path(app):
    client = app.test_client()
    before = scrape(client)
    for rid in ("1", "22", "333"):
        assert client.get(f"/api/v1/reservations/{rid}").status_code == 401
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)

    rule = {"method": "GET", "route": "/api/v1/reservations/<reservation_id>", "status": "401"}
    counted = value(after, "stockroom_http_requests_total", **rule)
    assert counted - value(before, "stockroom_http_requests_total", **rule) == 3
    observed = value(after, "stockroom_http_request_duration_seconds_count", **rule)
    assert observed - value(before, "stockroom_http_request_duration_seconds_count", **rule) == 3
    assert value(after, "stockroom_http_request_duration_seconds_bucket", le="+Inf", **rule) \
        == observed
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, "stockroom_http_requests_total", **unmatched) \
        - value(before, "stockroom_http_requests_total", **unmatched) == 1
    assert not any("/api/v1/reservations/22" in str(labels) for _, labels in after)


def test_reserves_are_counted_by_outcome(app, api_token, product_factory):
    product_factory("TEE-1", on_hand=3)
    db.session.rollback()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_token}"}

    def reserve(sku, quantity):
        body = {"sku": sku, "quantity": quantity, "session_key": "s-1"}
        return client.post("/api/v1/reservations", json=body, headers=auth).status_code

    before = scrape(client)
    assert [reserve("TEE-1", 2), reserve("TEE-1", 2), reserve("NOPE-1", 1)] == [201, 409, 404]
    assert client.post("/api/v1/carts/999/reserve", json={}, headers=auth).status_code == 404
    after = scrape(client)

    def delta(call, outcome):
        name = "stockroom_reserves_total"
        return (value(after, name, call=call, outcome=outcome)
                - value(before, name, call=call, outcome=outcome))

    assert [delta("reservation", o) for o in ("held", "insufficient", "unknown_sku")] == [1, 1, 1]
    assert delta("cart", "refused") == 1 and delta("cart", "held") == 0


def test_expiry_lag_is_the_age_of_the_oldest_overdue_active_hold(app, product_factory):
    client = app.test_client()
    assert value(scrape(client), "stockroom_expiry_lag_seconds") == 0
    product = product_factory(on_hand=5)
    services.reserve(product.sku, 1, Owner(session_key="late"), ttl_seconds=60,
                     now=clock() - timedelta(minutes=11))  # due ten minutes ago
    services.reserve(product.sku, 1, Owner(session_key="fresh"), ttl_seconds=600, now=clock())
    db.session.rollback()
    assert value(scrape(client), "stockroom_expiry_lag_seconds") >= 600


def test_job_runs_by_job_and_status_with_durations(app):
    jobs.run_job("expire", now=clock())
    jobs.run_job("reconcile", now=clock())
    db.session.rollback()
    samples = scrape(app.test_client())
    assert value(samples, "stockroom_job_runs_last_hour", job="expire", status="ok") == 1
    assert value(samples, "stockroom_job_runs_last_hour", job="alerts", status="ok") == 0
    assert ("stockroom_job_last_run_duration_seconds", (("job", "expire"),)) in samples
    assert value(samples, "stockroom_job_last_run_failed", job="reconcile") == 0
    assert ("stockroom_job_last_run_duration_seconds", (("job", "alerts"),)) not in samples


def test_unresolved_alerts_by_kind(app, product_factory, now):
    product_factory(on_hand=1, threshold=5)
    product_factory(on_hand=0, threshold=5)
    product_factory(on_hand=0, threshold=5)
    services.evaluate_alerts(now=now)
    db.session.rollback()
    samples = scrape(app.test_client())
    counts = {kind: value(samples, "stockroom_alerts_unresolved", kind=kind, status="open")
              for kind in ("LOW_STOCK", "OUT_OF_STOCK")}
    assert counts == {"LOW_STOCK": 1, "OUT_OF_STOCK": 2}


def test_pool_checked_out_counts_connections_in_use(app):
    client = app.test_client()
    db.session.remove()
    idle = value(scrape(client), "stockroom_db_pool_checked_out")
    held = db.engine.connect()
    try:
        in_use = value(scrape(client), "stockroom_db_pool_checked_out")
    finally:
        held.close()
    assert in_use == idle + 1


def test_metrics_refuse_other_addresses_unless_allowed_or_given_the_token(database_url):
    guarded = create_app(app_config(database_url, METRICS_TOKEN=TOKEN))
    client = guarded.test_client()
    assert client.get("/metrics").status_code == 200  # loopback
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 403
    wrong = {"Authorization": "Bearer metrics-token-wrong-guess"}
    assert client.get("/metrics", headers=wrong, environ_base=OUTSIDE).status_code == 403
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", headers=right, environ_base=OUTSIDE).status_code == 200

    ranged = create_app(app_config(database_url, METRICS_ALLOW=("203.0.113.0/24",)))
    assert ranged.test_client().get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert ranged.test_client().get("/metrics").status_code == 403  # loopback not listed now


def test_behind_a_proxy_on_this_host_metrics_see_the_outside_client(database_url):
    # nginx on loopback forwarding an outside request must not make it a loopback one.
    proxied = create_app(app_config(database_url, PROXY_HOPS=1))
    outside = {"X-Forwarded-For": "203.0.113.50"}
    assert proxied.test_client().get("/metrics", headers=outside).status_code == 403


def test_every_response_carries_a_request_id(app):
    client = app.test_client()
    made = client.get("/api/v1/ping").headers["X-Request-Id"]
    assert len(made) == 32 and int(made, 16) >= 0
    given = "3f2a9c1e-nginx.request_id"
    assert client.get("/api/v1/ping", headers={"X-Request-Id": given}) \
        .headers["X-Request-Id"] == given
    for hostile in ("short", "x" * 200, "bad id", "id;Set-Cookie=a", "<script>"):
        answered = client.get("/api/v1/ping", headers={"X-Request-Id": hostile})
        assert answered.headers["X-Request-Id"] not in (hostile, made)
        assert len(answered.headers["X-Request-Id"]) == 32


def test_each_request_ends_with_an_access_line_as_one_json_object(app, caplog):
    with caplog.at_level(logging.INFO, "stockroom.access"):
        app.test_client().get("/api/v1/reservations/7", headers={"X-Request-Id": "req-00000042"},
                              environ_base=OUTSIDE)
    [record] = [r for r in caplog.records if r.name == "stockroom.access"]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-00000042"
    assert entry["logger"] == "stockroom.access" and entry["level"] == "INFO"
    assert entry["route"] == "/api/v1/reservations/<reservation_id>" and entry["status"] == 401
    assert entry["client"] == "203.0.113.50" and entry["path"] == "/api/v1/reservations/7"


def test_a_log_line_written_during_a_request_carries_its_id(app):
    with app.test_request_context("/"):
        g.request_id = "req-00000043"
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            record = logging.getLogger("stockroom.x").makeRecord(
                "stockroom.x", logging.ERROR, __file__, 1, "failed: %s", ("reserve",),
                exc_info=sys.exc_info())
        entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "req-00000043" and entry["message"] == "failed: reserve"
    assert "RuntimeError: boom" in entry["exception"]
