"""Dashboard: sign in and sign out. Throttling of failed attempts is `services.signin`'s."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import signin
from ..services.errors import SignInRefused, SignInThrottled
from . import login
from .forms import SignInForm
from .navigation import safe_next

bp = Blueprint("auth", __name__)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        form.resume.data = "1" if request.args.get("resume") == "1" else ""
    if current_user.is_authenticated:
        return redirect(safe_next(form.next.data) or url_for("overview.index"))
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("auth/sign_in.html", form=form), status

    try:
        # The client's address: behind trusted proxies, ProxyFix (PROXY_HOPS) has made it the
        # real one rather than the proxy's.
        signed_in = signin.sign_in(form.email.data, form.password.data, ip=request.remote_addr,
                                   now=datetime.now(timezone.utc))
    except SignInRefused as refusal:
        response = current_app.make_response(
            (render_template("auth/sign_in.html", form=form, error=refusal.message),
             refusal.http_status))
        if isinstance(refusal, SignInThrottled):
            response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    login.start(signed_in.user, remember=form.remember.data)
    if form.resume.data == "1":
        # static/app.js puts the kept input back and shows this only if it found some.
        flash("What you typed before signing in is back in the form: check it and send it again.",
              "restore")
    previous_at, previous_ip = signed_in.previous_at, signed_in.previous_ip
    if previous_at is None:
        flash(f"Welcome, {signed_in.name}. This is your first sign-in.", "success")
    else:
        zone = ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])
        when = previous_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        flash(f"Welcome back, {signed_in.name}. Your last sign-in was {when}"
              f"{' from ' + previous_ip if previous_ip else ''}.", "info")
    return redirect(safe_next(form.next.data) or url_for("overview.index"))


@bp.get("/login")
def old_sign_in():
    """The usual address for signing in: the page is /sign-in."""
    return redirect(url_for("auth.sign_in", **request.args), 301)


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    if current_user.is_authenticated:
        login.end()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
