"""Flask-Login plumbing: who a session's staff member is, and where a request that needs
one goes (the sign-in page, then back to the page it came from).

The signed session cookie carries only a server-side session's id (`services.sessions`);
Flask-Login's own remember cookie is never set ("keep me signed in" makes the session
cookie persistent instead), so every device's sign-in ends when its row is deleted.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask, current_app, flash, g, jsonify, redirect, request, session, url_for
from flask_login import login_user, logout_user

from .. import services
from ..extensions import login_manager
from ..models import StaffUser
from .htmx import is_htmx
from .navigation import local_path, safe_next


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(unauthorized)


def _load_user(session_id: str) -> StaffUser | None:
    return services.staff_for_session(session_id, datetime.now(timezone.utc))


def start(user: StaffUser, *, remember: bool) -> None:
    """Sign `user` in on this device: a fresh cookie session holding a new session id."""
    # Nothing from before sign-in carries over, the CSRF secret included.
    session.clear()
    g.pop("csrf_token", None)
    user.session_token = services.start_session(
        user.id, remember=remember, user_agent=request.user_agent.string, ip=request.remote_addr,
        now=datetime.now(timezone.utc),
    )
    session.permanent = bool(remember)  # persistent for REMEMBER_DAYS, else until the browser closes
    login_user(user, remember=False)


def end() -> None:
    """Sign this device out and forget its session row."""
    services.end_session(session.get("_user_id"))
    logout_user()
    session.clear()


ENDED = {
    "signed_out": "You were signed out (in another tab or window) before this was sent.",
    "ended": ("Your session was ended elsewhere: you signed out everywhere, or an admin changed "
              "your role or password or signed you out."),
    "idle": "Your session timed out after {idle} minutes without use.",
    "expired": "Your session reached its time limit ({hours} hours after signing in).",
    "inactive": "Your account has been deactivated; ask an admin.",
}


def _sign_in_url(resume: bool) -> str:
    # Return to the page the staff member was on: the htmx request's page, or for a plain
    # form post the page the form was on (never the POST's own URL).
    if is_htmx():
        target = request.headers.get("HX-Current-URL")
    elif request.method == "POST":
        target = request.referrer
    else:
        target = request.full_path
    return url_for("auth.sign_in", next=safe_next(local_path(target)),
                   resume="1" if resume else None)


def _why() -> str:
    """Why a submit came without a live session, in the staff member's words."""
    reason = services.why_session_ended(session.get("_user_id"), datetime.now(timezone.utc))
    config = current_app.config
    return ENDED[reason].format(idle=config["SESSION_IDLE_MINUTES"], hours=config["SESSION_MAX_HOURS"])


def unauthorized():
    """A request that needs a signed-in staff member, without one. A submit (POST) is told
    why its session ended; the browser keeps what was typed (static/app.js) and puts it back
    in the form after signing in, for the staff member to check and send again: never resent
    by itself."""
    if request.path.startswith("/api/"):
        return jsonify(error="unauthorized", message="sign in required"), 401
    submitted = request.method == "POST"
    if submitted:
        flash(f"{_why()} Sign in again: what you typed is kept, for you to check and send.", "warning")
    else:
        flash("Please sign in to continue.", "info")
    if is_htmx():
        response = jsonify(error="unauthorized")
        response.status_code = 401
        response.headers["HX-Redirect"] = _sign_in_url(submitted)
        return response
    return redirect(_sign_in_url(submitted))
