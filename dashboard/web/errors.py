"""Error pages: a full page for a browser, a toast for htmx (the target left alone), the
API's JSON for /api/ paths; an expired form refreshes the page.

An outage (the database down, terminated, or lost while committing) answers 503 with a page
that needs no database (templates/unavailable.html: no signed-in user is loaded or read).
Any other error page that fails to render falls back to that page too. "Nothing was
changed" is said only when it is known: a GET, or a unit of work that rolled back.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, flash, g, jsonify, make_response, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from ..outage import MAYBE_CHANGED, NOTHING_CHANGED, OUTAGES, is_outage
from ..services.transaction import OutcomeUnknown
from ..extensions import db
from ..services import errors as refusals
from . import login
from .htmx import is_htmx, page, toast
from .navigation import safe_next

STATUSES = (400, 403, 404, 405, 409, 413, 422, 500)
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    # A record a dashboard action names but that does not exist (a stale page, a made-up id).
    app.register_error_handler(refusals.NotFound,
                               lambda error: _error_page(NotFound(error.message)))
    for status in STATUSES:
        app.register_error_handler(status, _error_page)
    for outage in OUTAGES:
        app.register_error_handler(outage, _outage)


def _csrf_error(error: CSRFError):
    if (not current_user.is_authenticated and not request.path.startswith("/api/")
            and request.endpoint not in ("auth.sign_in", "auth.sign_out")):
        # Signed out in another tab (the cookie's CSRF secret went with it): say so on the
        # sign-in page and keep the typing, rather than a bare "form expired".
        return login.unauthorized()
    message = "This form has expired. Refresh the page and try again."
    if is_htmx():
        response = jsonify(error="csrf", message=message)
        response.status_code = 400
        response.headers["HX-Refresh"] = "true"
        flash(message, "warning")
        return response
    return _safely(lambda: page("error.html", status=400, title="Form expired", message=message))


def _error_page(error):
    status = getattr(error, "code", 500) or 500
    original = getattr(error, "original_exception", None)
    if original is not None and is_outage(original):
        return _outage(original)
    # The failed request's transaction may be aborted; the page (its navigation reads the
    # signed-in user) must not run its queries inside it.
    try:
        db.session.rollback()
    except Exception as failure:  # noqa: BLE001 - the page falls back to needing no database
        log.warning("rollback before an error page failed: %s", failure)
    if request.path.startswith("/api/"):
        from ..api.errors import http_error  # the API's JSON shape, keeping e.g. Allow on 405

        return http_error(error if isinstance(error, HTTPException) else InternalServerError())
    message = _describe(error)
    if is_htmx():
        def fragment():
            response = page("_message.html", status=status, message=message)
            # Let htmx swap error fragments into the toast area instead of the target.
            response.headers["HX-Reswap"] = "none"
            return toast(response, message, "error")
        return _safely(fragment)
    return _safely(lambda: page("error.html", status=status, title=f"{status}", message=message))


def _outage(error):
    if not is_outage(error):
        raise error  # a database refusal (a constraint, bad data) is a bug: the 500 page
    if request.path.startswith("/api/"):
        from ..api.errors import database_unavailable

        return database_unavailable(error)
    unknown = isinstance(error, OutcomeUnknown)
    log.warning("database unavailable during %s %s: %s", request.method, request.path, error)
    message = MAYBE_CHANGED if unknown else NOTHING_CHANGED
    response = _without_database(503, "Database unavailable", message, check=unknown)
    response.headers["Retry-After"] = str(current_app.config["RETRY_AFTER_UNAVAILABLE"])
    if is_htmx():
        response.headers["HX-Reswap"] = "none"
        toast(response, message, "error")
    return response


def _safely(render):
    """An error page, or the database-free page if rendering it failed (e.g. loading the
    signed-in user for the nav while the database is down)."""
    try:
        return render()
    except Exception as error:  # noqa: BLE001
        log.warning("error page failed to render: %s", error)
        return _without_database(503 if is_outage(error) else 500, "Something went wrong",
                                 "Something went wrong on our side. Please try again.")


def _without_database(status: int, heading: str, message: str, check: bool = False):
    where = safe_next(request.form.get("next")) if request.method == "POST" else None
    # The template itself, not render_template: its context processors load the signed-in user.
    html = current_app.jinja_env.get_template("unavailable.html").render( heading=heading, message=message,
        check_url=(where or "/activity") if check else None,
        check_label="Check whether it was applied" if where else "Check the activity ledger",
    )
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _describe(error) -> str:
    description = getattr(error, "description", None)
    if getattr(error, "code", 500) == 500:
        if request.method == "GET" or g.get("rolled_back"):
            return "Something went wrong on our side; nothing was changed. Please try again."
        return "Something went wrong on our side. Please try again."
    if getattr(error, "code", None) == 413:
        megabytes = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return f"That upload is too large: the limit is {megabytes} MB."
    return description or "That did not work."
