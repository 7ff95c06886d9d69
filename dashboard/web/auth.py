"""Dashboard: sign in and sign out. Throttling of failed attempts is `services.signin`'s."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from ..services import signin
from ..services.errors import SignInRefused
from .forms import SignInForm
from .navigation import safe_next

bp = Blueprint("auth", __name__)


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

    try:
        # Behind PROXY_HOPS proxies, ProxyFix has already made remote_addr the client's.
        signed_in = signin.sign_in(form.email.data, form.password.data, ip=request.remote_addr,
                                   now=datetime.now(timezone.utc))
    except SignInRefused as refusal:
        return (render_template("auth/sign_in.html", form=form, error=refusal.message),
                refusal.http_status)
    login_user(signed_in.user, remember=form.remember.data)
    previous_at, previous_ip = signed_in.previous_at, signed_in.previous_ip
    if previous_at is None:
        flash(f"Welcome, {signed_in.name}. This is your first sign-in.", "success")
    else:
        zone = ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])
        when = previous_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        flash(f"Welcome back, {signed_in.name}. Your last sign-in was {when}"
              f"{' from ' + previous_ip if previous_ip else ''}.", "info")
    return redirect(safe_next(form.next.data) or url_for("overview.index"))


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    if current_user.is_authenticated:
        logout_user()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
