"""The staff dashboard: blueprints, sign-in plumbing, error pages and security headers."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Flask, flash, jsonify, redirect, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException, InternalServerError

from ..extensions import db, login_manager
from ..models import StaffUser, StockAlert
from .access import can
from .htmx import is_htmx, page, toast


def init_app(app: Flask) -> None:
    from . import activity, admin, alerts, auth, holds, jobs, overview, products, stock

    for module in (auth, overview, stock, products, holds, alerts, activity, jobs, admin):
        app.register_blueprint(module.bp)

    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)

    app.register_error_handler(CSRFError, _csrf_error)
    for status in (400, 403, 404, 405, 409, 422, 500):
        app.register_error_handler(status, _error_page)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    app.add_template_filter(_local_time, "local_time")
    app.add_template_filter(_relative_time, "relative_time")
    app.add_template_filter(_time_tag, "time_tag")


def _load_user(user_id: str) -> StaffUser | None:
    """Sessions carry id:session_version, so a password reset or deactivation signs out."""
    try:
        staff_id, version = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    user = db.session.get(StaffUser, staff_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def _sign_in_url() -> str:
    # Return to the page the staff member was on (the htmx request's page, not the fragment).
    target = request.headers.get("HX-Current-URL") if is_htmx() else request.full_path
    return url_for("auth.sign_in", next=_local_path(target))


def _local_path(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    path = parts.path or "/"
    return path + ("?" + parts.query if parts.query else "")


def _unauthorized():
    if request.path.startswith("/api/"):
        return jsonify(error="unauthorized", message="sign in required"), 401
    if is_htmx():
        response = jsonify(error="unauthorized")
        response.status_code = 401
        response.headers["HX-Redirect"] = _sign_in_url()
        return response
    flash("Please sign in to continue.", "info")
    return redirect(_sign_in_url())


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
    return description or "That did not work."


def _security_headers(response):
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
        " script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self';"
        " form-action 'self'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if current_user and getattr(current_user, "is_authenticated", False):
        headers.setdefault("Cache-Control", "no-store")
    return response


def _open_alert_count() -> int:
    if not current_user.is_authenticated:
        return 0
    return db.session.scalar(
        select(func.count()).select_from(StockAlert).where(StockAlert.status == "open")
    ) or 0


def _template_globals() -> dict:
    return {"can": can, "open_alert_count": _open_alert_count}


def _zone():
    from flask import current_app

    return ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE", "UTC"))


def _local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    if value is None:
        return ""
    return value.astimezone(_zone()).strftime(fmt)


def _relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """'in 4 min', '3 h ago', 'just now'."""
    if value is None:
        return "never"
    now = now or datetime.now(timezone.utc)
    seconds = int((value - now).total_seconds())
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 45:
        return "in a few seconds" if future else "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = round(seconds / size)
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    return ""


def _time_tag(value: datetime | None) -> Markup:
    """<time> with the relative time shown and the exact local time on hover."""
    if value is None:
        return Markup('<span class="muted">never</span>')
    return Markup(
        f'<time datetime="{escape(value.isoformat())}" title="{escape(_local_time(value))}">'
        f"{escape(_relative_time(value))}</time>"
    )
