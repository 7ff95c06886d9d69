"""Error pages: a full page for a browser, a toast for htmx (the target left alone), the
API's JSON for /api/ paths; an expired form refreshes the page."""
from __future__ import annotations

from flask import Flask, current_app, flash, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from ..extensions import db
from ..services import errors as refusals
from .htmx import is_htmx, page, toast

STATUSES = (400, 403, 404, 405, 409, 413, 422, 500)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    # A record a dashboard action names but that does not exist (a stale page, a made-up id).
    app.register_error_handler(refusals.NotFound,
                               lambda error: _error_page(NotFound(error.message)))
    for status in STATUSES:
        app.register_error_handler(status, _error_page)


def _csrf_error(error: CSRFError):
    message = "This form has expired. Refresh the page and try again."
    if is_htmx():
        response = jsonify(error="csrf", message=message)
        response.status_code = 400
        response.headers["HX-Refresh"] = "true"
        flash(message, "warning")
        return response
    return page("error.html", status=400, title="Form expired", message=message)


def _error_page(error):
    status = getattr(error, "code", 500) or 500
    # The failed request's transaction may be aborted; the page (its navigation reads the
    # signed-in user) must not run its queries inside it.
    db.session.rollback()
    if request.path.startswith("/api/"):
        from ..api.errors import http_error  # the API's JSON shape, keeping e.g. Allow on 405

        return http_error(error if isinstance(error, HTTPException) else InternalServerError())
    message = _describe(error)
    if is_htmx():
        response = page("_message.html", status=status, message=message)
        # Let htmx swap error fragments into the toast area instead of the target.
        response.headers["HX-Reswap"] = "none"
        return toast(response, message, "error")
    return page("error.html", status=status, title=f"{status}", message=message)


def _describe(error) -> str:
    description = getattr(error, "description", None)
    if getattr(error, "code", 500) == 500:
        return "Something went wrong on our side; nothing was changed. Please try again."
    if getattr(error, "code", None) == 413:
        megabytes = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return f"That upload is too large: the limit is {megabytes} MB."
    return description or "That did not work."
