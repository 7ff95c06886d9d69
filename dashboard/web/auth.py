"""Dashboard: sign in and sign out, with failed attempts throttled per account and address.

Failures live in the `login_attempts` table so every web worker and host shares the count.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import LoginAttempt
from ..services import record_sign_in, verify_password
from .forms import SignInForm
from .navigation import safe_next

bp = Blueprint("auth", __name__)


def _client_ip() -> str:
    # Behind a proxy, wsgi.py's ProxyFix (if configured) has already set remote_addr.
    return (request.remote_addr or "unknown")[:45]


def _retry_after(email: str, ip: str, now: datetime) -> int | None:
    """Seconds until this account and address may try again, or None if they may now."""
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    limit = config["LOGIN_MAX_FAILURES"]
    since = now - window
    waits = []
    for column, value in ((LoginAttempt.email, email), (LoginAttempt.ip, ip)):
        # The limit-th most recent failure in the window: once it ages out, one more try is allowed.
        blocking = db.session.scalar(
            select(LoginAttempt.attempted_at)
            .where(column == value, LoginAttempt.attempted_at > since)
            .order_by(LoginAttempt.attempted_at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        if blocking is not None:
            waits.append((blocking + window - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


def _claim_attempt(email: str, ip: str, now: datetime) -> bool:
    """Record this attempt as a failure BEFORE the password is checked, so concurrent guesses
    on several workers cannot all slip under the limit; False (attempt withdrawn) if over it.
    A successful sign-in clears it again."""
    config = current_app.config
    since = now - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= since))  # prune
    attempt = LoginAttempt(email=email, ip=ip, attempted_at=now)
    db.session.add(attempt)
    db.session.commit()
    for column, value in ((LoginAttempt.email, email), (LoginAttempt.ip, ip)):
        counted = db.session.scalar(
            select(func.count()).select_from(LoginAttempt)
            .where(column == value, LoginAttempt.attempted_at > since)
        )
        if counted > config["LOGIN_MAX_FAILURES"]:
            db.session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
            db.session.commit()
            return False
    return True


def _clear_failures(email: str) -> None:
    # Only the account's failures: a success must not wipe an address's count for other accounts.
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))
    db.session.commit()


def _too_many_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if current_user.is_authenticated:
        return redirect(safe_next(form.next.data) or url_for("overview.index"))
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("auth/sign_in.html", form=form), status

    now = datetime.now(timezone.utc)
    email, ip = form.email.data.strip().lower(), _client_ip()
    wait = _retry_after(email, ip, now)
    if wait is None and not _claim_attempt(email, ip, now):
        wait = _retry_after(email, ip, now) or current_app.config["LOGIN_WINDOW_SECONDS"]
    if wait is not None:
        # Refused before checking the password, so guessing during the lockout learns nothing.
        return render_template("auth/sign_in.html", form=form, error=_too_many_message(wait)), 429
    user = verify_password(email, form.password.data)
    if user is None:
        wait = _retry_after(email, ip, now)  # this attempt already counts as a failure
        error = _too_many_message(wait) if wait else "That email and password do not match an active account."
        return render_template("auth/sign_in.html", form=form, error=error), 401

    previous_at, previous_ip = user.last_login_at, user.last_login_ip
    _clear_failures(email)
    record_sign_in(user.id, ip=ip, now=now)
    login_user(user, remember=form.remember.data)
    if previous_at is None:
        flash(f"Welcome, {user.name}. This is your first sign-in.", "success")
    else:
        zone = ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])
        when = previous_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        flash(f"Welcome back, {user.name}. Your last sign-in was {when}"
              f"{' from ' + previous_ip if previous_ip else ''}.", "info")
    return redirect(safe_next(form.next.data) or url_for("overview.index"))


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    if current_user.is_authenticated:
        logout_user()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
