"""Flask-Login plumbing: who a session's staff member is, and where a request that needs
one goes (the sign-in page, then back to the page it came from)."""
from __future__ import annotations

from flask import Flask, flash, jsonify, redirect, request, url_for

from ..extensions import login_manager
from ..models import StaffUser
from ..queries.admin import staff_member
from .htmx import is_htmx
from .navigation import local_path


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)


def _load_user(user_id: str) -> StaffUser | None:
    """Sessions carry id:session_version, so a password reset or deactivation signs out."""
    try:
        staff_id, version = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    user = staff_member(staff_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def _sign_in_url() -> str:
    # Return to the page the staff member was on (the htmx request's page, not the fragment).
    target = request.headers.get("HX-Current-URL") if is_htmx() else request.full_path
    return url_for("auth.sign_in", next=local_path(target))


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
