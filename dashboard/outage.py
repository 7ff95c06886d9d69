"""The database is down: what counts as that, and the last-resort answers that keep a
failure in teardown or in an error page from escaping as gunicorn's bare 500 page.

An outage is a connection that could not be made, was terminated or timed out in the pool
(SQLAlchemy's OperationalError, InterfaceError, a DBAPIError that invalidated its
connection, the pool's TimeoutError) and `OutcomeUnknown` (lost while committing). The API
answers 503 `database_unavailable` with Retry-After, the dashboard a 503 page rendered
without the database (api/errors.py, web/errors.py).
"""
from __future__ import annotations

import json
import logging
import sys

from flask import Flask
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .extensions import db
from .services.transaction import OutcomeUnknown, is_disconnect

log = logging.getLogger(__name__)
OUTAGES = (DBAPIError, PoolTimeout, OutcomeUnknown)
UNAVAILABLE = "the database is unavailable"
NOTHING_CHANGED = "The database is unavailable right now; nothing was changed. Try again in a moment."
MAYBE_CHANGED = ("The database connection was lost while saving; this may or may not have "
                 "been applied. Check before doing it again; submitting the same form again "
                 "is safe (it is applied at most once).")


def is_outage(error: BaseException) -> bool:
    return isinstance(error, (PoolTimeout, OutcomeUnknown)) or is_disconnect(error)


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def _end_session(_error):
        # Registered after Flask-SQLAlchemy's, so it runs first: a rollback on a dead
        # connection must not escape the request (the answer is already made).
        try:
            db.session.remove()
        except Exception:  # noqa: BLE001
            log.warning("could not end the database session cleanly", exc_info=True)
            db.session.registry.clear()

    app.wsgi_app = _LastResort(app.wsgi_app, app)


class _LastResort:
    """WSGI wrapper: an exception that escaped Flask (teardown, an error handler that
    failed) becomes a 503 or 500 in the shape the path expects, never a bare page."""

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app, self.app = wsgi_app, app

    def __call__(self, environ, start_response):
        started = []

        def start(status, headers, exc_info=None):
            started.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        except Exception as error:  # noqa: BLE001
            propagate = self.app.config["PROPAGATE_EXCEPTIONS"]
            if propagate or (propagate is None and (self.app.testing or self.app.debug)):
                raise  # tests and the debugger want the error itself, as Flask gives it them
            log.exception("an error escaped the app")
            return _answer(environ, start_response, error, replacing=bool(started))


def _answer(environ, start_response, error, replacing: bool):
    outage = is_outage(error)
    status = "503 Service Unavailable" if outage else "500 Internal Server Error"
    if environ.get("PATH_INFO", "").startswith("/api/"):
        body = json.dumps({"error": "database_unavailable" if outage else "server_error",
                           "message": UNAVAILABLE if outage
                           else "something went wrong on our side"}).encode()
        kind = "application/json"
    else:
        # Not known here whether anything was saved: say only that it failed.
        text = ("The database is unavailable right now. Try again in a moment." if outage
                else "Something went wrong on our side. Please try again.")
        body = (f"<!doctype html><title>Stockroom</title><h1>Stockroom</h1><p>{text}</p>"
                ).encode()
        kind = "text/html; charset=utf-8"
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))),
               ("Retry-After", "2"), ("Cache-Control", "no-store")]
    # Replacing an answer whose headers are not sent yet is allowed with exc_info (PEP 3333).
    start_response(status, headers, sys.exc_info() if replacing else None)
    return [body]
