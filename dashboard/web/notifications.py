"""Notification pages: each staff member's own settings (/account/notifications), who
receives what (/admin/notifications), and webhook endpoints with their delivery log
(/admin/webhooks). Views parse, call a query or a service, and render."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import current_user

from ..queries.catalogue import categories
from ..queries.notifications import delivery_log, endpoints
from ..services import Actor, subscriptions, webhooks
from ..services.errors import StockroomError
from .access import require
from .htmx import page
from .notification_forms import EndpointForm, SubscriptionForm, choices
from .once import applies_once

bp = Blueprint("notifications", __name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- your settings ------------------------------------------------------------------------

def _settings_page(form: SubscriptionForm, status: int = 200):
    form.categories.choices = choices(sorted(set(categories()) | set(form.categories.data or [])))
    return page("notifications/settings.html", status=status, form=form,
                mail_on=bool(current_app.config.get("SMTP_HOST")))


@bp.get("/account/notifications")
@require("own_account")
def settings():
    mine = subscriptions.subscription_of(current_user.id)
    form = SubscriptionForm(formdata=None, mode=mine.mode, everything=mine.categories is None,
                            categories=list(mine.categories or []))
    return _settings_page(form)


@bp.post("/account/notifications")
@require("own_account")
@applies_once
def save_settings():
    form = SubscriptionForm()
    if not form.validate():
        return _settings_page(form, 422)
    chosen = None if form.everything.data else list(form.categories.data or [])
    try:
        subscriptions.choose(current_user.id, form.mode.data, chosen, now=_now())
    except StockroomError as refusal:
        field = getattr(refusal, "field", None)
        form[field if field in form else "mode"].errors = [refusal.message]
        return _settings_page(form, 422)
    flash("Notification settings saved.", "success")
    return redirect(url_for("notifications.settings"))


# --- admin: who receives what -----------------------------------------------------------

@bp.get("/admin/notifications")
@require("manage_staff")
def recipients():
    return page("notifications/recipients.html", people=subscriptions.subscriptions(),
                log=delivery_log("mail"))


# --- admin: webhooks ----------------------------------------------------------------------

def _webhooks_page(form: EndpointForm | None = None, status: int = 200, **context):
    return page("notifications/webhooks.html", status=status,
                form=form or EndpointForm(formdata=None), endpoints=endpoints(),
                log=delivery_log("webhook"), allowed=webhooks.allowed_hosts(), **context)


@bp.get("/admin/webhooks")
@require("manage_staff")
def webhooks_index():
    return _webhooks_page()


@bp.post("/admin/webhooks")
@require("manage_staff")
@applies_once
def add_webhook():
    form = EndpointForm()
    if not form.validate():
        return _webhooks_page(form, 422)
    try:
        made = webhooks.add_endpoint(form.url.data, form.events.data, form.secret.data,
                                     actor=Actor.staff(current_user), now=_now())
    except StockroomError as refusal:
        field = getattr(refusal, "field", None)
        form[field if field in form else "url"].errors = [refusal.message]
        return _webhooks_page(form, 422)
    # The secret is in this answer only; the page never shows it again.
    flash(f"Webhook to {made.url} added; copy its secret now.", "success")
    return _webhooks_page(new_endpoint=made)


@bp.post("/admin/webhooks/<id32:endpoint_id>/test")
@require("manage_staff")
@applies_once
def test_webhook(endpoint_id: int):
    try:
        url = webhooks.send_test(endpoint_id, actor=Actor.staff(current_user), now=_now())
    except StockroomError as refusal:
        return _webhooks_page(status=refusal.http_status, refusal=refusal.message)
    flash(f"Test event queued for {url}; the delivery log shows how it went.", "success")
    return redirect(url_for("notifications.webhooks_index"))


@bp.post("/admin/webhooks/<id32:endpoint_id>/active")
@require("manage_staff")
@applies_once
def set_webhook_active(endpoint_id: int):
    active = request.form.get("active") == "1"
    try:
        url = webhooks.set_endpoint_active(endpoint_id, active, now=_now())
    except StockroomError as refusal:
        return _webhooks_page(status=refusal.http_status, refusal=refusal.message)
    flash(f"Webhook to {url} {'resumed' if active else 'paused'}.", "success")
    return redirect(url_for("notifications.webhooks_index"))
