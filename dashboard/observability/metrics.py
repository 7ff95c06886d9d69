"""Prometheus metrics at /metrics, for the addresses in METRICS_ALLOW or a METRICS_TOKEN.

Counted as they happen, in this process (summed over gunicorn's workers through the files
in PROMETHEUS_MULTIPROC_DIR, which gunicorn.conf.py sets up):
  stockroom_http_requests_total, stockroom_http_request_duration_seconds
      {method, route, status}: route is the URL rule (/api/v1/reservations/<reservation_id>),
      never the raw path, so ids do not make a series each;
  stockroom_reserves_total{call, outcome}: held, insufficient, unknown_sku, inactive_sku,
      invalid, refused (another refusal) or error; counted by the API, not the services;
  stockroom_db_pool_checked_out: database connections in use, summed over live workers.
Read from the database at each scrape (dashboard.queries.metrics):
  stockroom_expiry_lag_seconds, stockroom_job_runs_last_hour{job, status},
  stockroom_job_last_run_duration_seconds / _failed / _finished_timestamp_seconds{job},
  stockroom_alerts_unresolved{kind, status}, stockroom_metrics_database_up.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from contextlib import contextmanager
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, request
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event

from ..queries import metrics as queries
from ..services.errors import StockroomError
from ..services.transaction import NotOneStatement

log = logging.getLogger("stockroom.metrics")
bp = Blueprint("metrics", __name__)
# The classic text format every Prometheus version reads (our names need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # no *_created series: start times say nothing a rate() needs
# This process's own series; in multiprocess mode their values live in files instead.
LIVE = CollectorRegistry(auto_describe=True)
LABELS = ("method", "route", "status")
REQUESTS = Counter("stockroom_http_requests", "HTTP requests answered, by URL rule and status",
                   LABELS, registry=LIVE)
LATENCY = Histogram("stockroom_http_request_duration_seconds",
                    "Time to answer a request, by URL rule and status", LABELS, registry=LIVE,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RESERVES = Counter("stockroom_reserves", "Reserve calls through the storefront API, by outcome",
                   ("call", "outcome"), registry=LIVE)
POOL_CHECKED_OUT = Gauge("stockroom_db_pool_checked_out",
                         "Database connections checked out of the pool",
                         registry=LIVE, multiprocess_mode="livesum")

_OUTCOMES = {"insufficient_stock": "insufficient", "unknown_sku": "unknown_sku",
             "inactive_sku": "inactive_sku", "invalid": "invalid"}


def init_app(app) -> None:
    app.register_blueprint(bp)
    from ..extensions import db

    with app.app_context():
        engine = db.engine
    event.listen(engine, "checkout", lambda *_: POOL_CHECKED_OUT.inc())
    event.listen(engine, "checkin", lambda *_: POOL_CHECKED_OUT.dec())


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)


@contextmanager
def reserve_outcome(call: str):
    """Count the reserve call made inside the block by how it ended."""
    try:
        yield
    except NotOneStatement:
        raise  # nothing happened yet: the call is made again, and counted then
    except StockroomError as error:
        RESERVES.labels(call, _OUTCOMES.get(error.code, "refused")).inc()
        raise
    except Exception:
        RESERVES.labels(call, "error").inc()
        raise
    RESERVES.labels(call, "held").inc()


@bp.get("/metrics")
def scrape():
    if not _allowed():
        return Response("metrics are open to the addresses in METRICS_ALLOW, or with"
                        " METRICS_TOKEN as a bearer token\n", 403, mimetype="text/plain")
    body = generate_latest(_counted()) + generate_latest(_read_now())
    return Response(body, 200, headers={"Content-Type": CONTENT_TYPE,
                                        "Cache-Control": "no-store"})


def _allowed() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(
            given[len("Bearer "):].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(allowed)
               for allowed in current_app.config["METRICS_ALLOW"])


def _counted() -> CollectorRegistry:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return LIVE
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


def _read_now() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseCollector())
    return registry


class _DatabaseCollector:
    """Figures read from the database at scrape time; a database outage leaves them out."""

    def collect(self):
        up = GaugeMetricFamily("stockroom_metrics_database_up",
                               "1 when this scrape could read the database")
        try:
            found = queries.snapshot(datetime.now(timezone.utc))
        except Exception as error:
            log.warning("metrics: database figures left out: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _gauge("stockroom_expiry_lag_seconds",
                     "Age of the oldest overdue active hold (0 when none is overdue)",
                     [], {(): found.expiry_lag_seconds})
        yield _gauge("stockroom_job_runs_last_hour", "Job runs started in the last hour",
                     ["job", "status"], found.runs_last_hour)
        last = found.last_runs
        yield _gauge("stockroom_job_last_run_duration_seconds",
                     "How long the latest finished run of each job took", ["job"],
                     {(job,): run.seconds for job, run in last.items()})
        yield _gauge("stockroom_job_last_run_failed", "1 when the latest finished run failed",
                     ["job"], {(job,): float(run.status == "failed") for job, run in last.items()})
        yield _gauge("stockroom_job_last_run_finished_timestamp_seconds",
                     "When the latest finished run of each job ended", ["job"],
                     {(job,): run.finished_at.timestamp() for job, run in last.items()})
        yield _gauge("stockroom_alerts_unresolved", "Open and acknowledged alerts",
                     ["kind", "status"], found.unresolved_alerts)


def _gauge(name: str, documentation: str, labels: list[str], values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in values.items():
        family.add_metric(list(key), value)
    return family
