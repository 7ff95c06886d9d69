"""What operations sees of a running Stockroom: request ids, log lines and metrics.

Every request gets an id: the caller's `X-Request-Id` when it is well formed (nginx's
$request_id, a load balancer's trace id), else a new one. It is sent back in the
`X-Request-Id` response header and written on every JSON log line of the request, and
each request ends with one `stockroom.access` line: method, path, URL rule, status,
duration and the client's address (the real one behind PROXY_HOPS proxies).
"""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request

from . import logs

access_log = logging.getLogger("stockroom.access")
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
UNMATCHED = "<unmatched>"  # the route label of a request no URL rule matched (404, 405)


def init_app(app: Flask) -> None:
    # Imported here: gunicorn's master loads `logs` for its JSON lines, and must not make
    # metric files of its own.
    from . import metrics

    logs.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    app.before_request(_start)
    app.after_request(lambda response: _finish(response, metrics.observe_request))
    metrics.init_app(app)


def _start() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish(response, observe):
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-Id"] = request_id
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    observe(request.method, route, response.status_code, seconds)
    access_log.info(
        "%s %s %s %.1f ms", request.method, request.path, response.status_code, seconds * 1000,
        extra={"request_id": request_id, "method": request.method, "path": request.path,
               "route": route, "status": response.status_code,
               "duration_ms": round(seconds * 1000, 2), "client": request.remote_addr},
    )
    return response
