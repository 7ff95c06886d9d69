"""Alerts (SPEC §4, §6): open / acknowledged / resolved tabs, acknowledge, resolve with a note."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..models import ALERT_KINDS, ALERT_STATUSES
from ..queries.alerts import SORTS, alerts_page, default_sort, one_alert, unresolved_counts
from ..services.alerts import level_of
from ..services.errors import StockroomError
from .access import require
from .forms import ResolveForm
from .htmx import page, row_answer, trigger
from .once import applies_once

bp = Blueprint("alerts", __name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _view_args(source) -> tuple[str, str | None]:
    tab = source.get("tab", "open")
    kind = source.get("kind") or None
    return (tab if tab in ALERT_STATUSES else "open",
            kind if kind in ALERT_KINDS else None)


@bp.get("/alerts")
@login_required
def index():
    tab, kind = _view_args(request.args)
    after = (request.args.get("after") or "")[:64]
    q = " ".join((request.args.get("q") or "").split())[:100]
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else default_sort(tab)
    return page(
        "alerts/index.html", "alerts/_results.html",
        tab=tab, kind=kind, after=after, q=q, sort=sort, sorts=SORTS, kinds=ALERT_KINDS,
        counts=unresolved_counts(), result=alerts_page(tab, kind, after or None, q=q, sort=sort),
    )


def _row_response(alert_id: int, *, message: str, level: str, status: int = 200, **context):
    """The alert's row re-rendered in place (htmx), or back to the alerts page (plain post)."""
    alert = one_alert(alert_id)
    if alert is None:
        abort(404, description=f"Alert {alert_id} does not exist.")
    response = row_answer(
        "alerts/_row_answer.html", "alerts/row_page.html",
        back_to=url_for("alerts.index", tab=request.form.get("tab", "open")),
        message=message, level=level, status=status, alert=alert, counts=unresolved_counts(),
        **context,
    )
    if status < 400:
        trigger(response, "alerts-changed")  # the navigation's open-alert badge refreshes
    return response


@bp.post("/alerts/<id32:alert_id>/acknowledge")
@require("manage_alerts")
@applies_once
def acknowledge(alert_id: int):
    try:
        services.acknowledge(alert_id, actor=services.Actor.staff(current_user), now=_now())
    except StockroomError as error:
        if error.http_status == 404:
            abort(404, description=error.message)
        return _row_response(alert_id, message=error.message, level="error", status=409,
                             row_message=error.message)
    return _row_response(alert_id, level="success",
                         message="Alert acknowledged: others can see someone is on it.")


@bp.post("/alerts/<id32:alert_id>/resolve")
@require("manage_alerts")
@applies_once
def resolve(alert_id: int):
    form = ResolveForm()
    if not form.validate():
        return _row_response(alert_id, message="Not resolved: " + form.note.errors[0],
                             level="error", status=422, resolve_form=form, open_actions=True)
    try:
        services.resolve(alert_id, actor=services.Actor.staff(current_user),
                         note=form.note.data, now=_now())
    except StockroomError as error:
        if error.http_status == 404:
            abort(404, description=error.message)
        return _row_response(alert_id, message=error.message, level="error",
                             status=error.http_status if error.http_status in (409, 422) else 409,
                             row_message=error.message, resolve_form=form)
    product = one_alert(alert_id).product
    still = level_of(product.available, product.low_stock_threshold, product.is_active)
    message = "Alert resolved."
    if still is not None:
        message += (f" {product.sku} is still {'out of stock' if still == 'OUT_OF_STOCK' else 'low'}:"
                    " its alerts are muted until it recovers above its threshold.")
    return _row_response(alert_id, level="success", message=message)
