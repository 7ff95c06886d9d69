"""Health checks for monitors and load balancers (SPEC §9).

/healthz       the whole service: the database answers and a scheduler has beaten within
               three expiry intervals. 503 when either fails, or before any scheduler has
               ever run ("scheduler never seen").
/healthz/web   this web process only: the database answers. Point load balancers here, so
               a stopped scheduler pages someone instead of taking the site down.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, jsonify

from .database import probe
from .extensions import db
from .queries.jobs import last_heartbeat
from .schedule import silence_limit
from .services.job_runs import one_line

bp = Blueprint("health", __name__)
# Within a load balancer's usual 5 s probe timeout, even when a pooler holds the query.
PROBE_SECONDS = 3


@bp.get("/healthz")
def healthz():
    now = datetime.now(timezone.utc)
    database = _database()
    if database is not None:
        return _answer(503, database=database, reason=database)
    beat = last_heartbeat()
    db.session.rollback()
    limit = silence_limit().total_seconds()
    if beat is None:
        return _answer(503, database="ok", scheduler=None, reason="scheduler never seen")
    age = round((now - beat.beat_at).total_seconds(), 1)
    scheduler = {"last_heartbeat_at": beat.beat_at.isoformat(), "age_seconds": age,
                 "name": beat.name, "limit_seconds": limit}
    if age > limit:
        return _answer(503, database="ok", scheduler=scheduler,
                       reason=f"scheduler silent for {age:.0f} s (limit {limit:.0f} s)")
    return _answer(200, database="ok", scheduler=scheduler)


@bp.get("/healthz/web")
def healthz_web():
    database = _database()
    if database is not None:
        return _answer(503, database=database, reason=database)
    return _answer(200, database="ok")


def _database() -> str | None:
    """None when the database answers, else why not (one line)."""
    error = probe(db.engine, PROBE_SECONDS)
    return None if error is None else f"database unreachable: {one_line(error)}"


def _answer(status: int, **body):
    body = {"status": "ok" if status == 200 else "unavailable", **body}
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
