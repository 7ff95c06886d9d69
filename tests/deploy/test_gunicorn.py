"""A real `gunicorn wsgi:app` with this repository's gunicorn.conf.py.

Slow clients: connections that send half their headers and wait must not keep other
requests from being answered. Metrics: counts from every worker add up at /metrics,
whichever worker answers the scrape. Logs: with LOG_FORMAT=json every line, gunicorn's
own included, is one JSON object.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.slow_clients import ping, slow_connections
from tests.helpers.servers import gunicorn

pytestmark = pytest.mark.slow


@contextmanager
def plain_gunicorn(database_url: str, log_path, **env):
    """`gunicorn wsgi:app` from the repository root, 3 workers: gunicorn.conf.py configures
    the rest. Yields its port."""
    with gunicorn(database_url, workers=None, app="wsgi:app", log_path=log_path,
                  env={"SECRET_KEY": "test-secret", "WEB_CONCURRENCY": "3", **env}) as base:
        time.sleep(1)  # every worker booted, not only the first to answer
        yield urlsplit(base).port


@pytest.mark.parametrize("slow", [4, 10])  # of 3 workers x 4 threads: one worker's worth, most
def test_slow_connections_do_not_delay_other_requests(database_url, tmp_path, slow):
    with plain_gunicorn(database_url, tmp_path / "gunicorn.log") as port:
        held = slow_connections(port, slow)
        try:
            answers = [ping(port, timeout=10) for _ in range(20)]
        finally:
            for sock in held:
                sock.close()
    assert None not in answers, f"{answers.count(None)} of 20 pings got no answer in 10 s"


def test_metrics_add_up_over_workers_and_logs_are_json_lines(database_url, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with plain_gunicorn(database_url, log_path, LOG_FORMAT="json") as port:
        base = f"http://127.0.0.1:{port}"
        for i in range(30):  # new connections: spread over the workers
            answer = requests.get(f"{base}/api/v1/products/SKU-{i}",
                                  headers={"X-Request-Id": f"test-request-{i:04d}",
                                           "Connection": "close"}, timeout=10)
            assert answer.status_code == 401
            assert answer.headers["X-Request-Id"] == f"test-request-{i:04d}"
        scrapes = [requests.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10)
                   for _ in range(6)]
        served_by = {s.headers["X-Request-Id"] for s in scrapes}
    counted = []
    for scrape in scrapes:
        assert scrape.status_code == 200
        for family in text_string_to_metric_families(scrape.text):
            counted += [s.value for s in family.samples
                        if s.name == "stockroom_http_requests_total"
                        and s.labels == {"method": "GET", "route": "/api/v1/products/<sku:sku>",
                                         "status": "401"}]
    assert counted == [30.0] * 6 and len(served_by) == 6

    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line, gunicorn's own included
    assert any(e["logger"] == "gunicorn.error" for e in entries)
    access = [e for e in entries if e.get("request_id") == "test-request-0007"]
    assert [(e["logger"], e["status"], e["path"]) for e in access] == [
        ("stockroom.access", 401, "/api/v1/products/SKU-7")]
