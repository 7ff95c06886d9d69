"""Dashboard: one product's page: figures, stock-over-time chart from the ledger, the ledger,
active holds, alert history, and its threshold and active flag."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..models import Product
from ..queries.params import whole_number_or_none
from ..queries.products import active_holds, alert_history, ledger_page, levels_since, product_by_sku
from ..queries.stock import levels_of, unresolved_alert
from ..services import limits
from ..services.alerts import level_of
from ..services.errors import StockroomError
from .access import require
from .chart import RANGES, chosen_range, range_start, stock_chart
from .forms import AdjustForm, CountForm, ProductSettingsForm
from .htmx import page, refusal, toast
from .once import applies_once

bp = Blueprint("products", __name__)

def product_or_404(sku: str) -> Product:
    """The product a page's SKU names, or a 404 (the product and catalogue pages)."""
    if len(sku) > limits.MAX_SKU or not sku.isprintable():
        abort(404, description="No product has that SKU.")  # not worth a statement, nor an echo
    product = product_by_sku(sku)
    if product is None:
        abort(404, description=f"No product has the SKU {sku}.")
    return product


def _chart(product: Product, now: datetime):
    range_key = chosen_range(request.args.get("range"))
    start_level, changes = levels_since(product.id, range_start(range_key, now))
    return stock_chart(product, range_key, start_level, changes, now)


def _page_context(product: Product, now: datetime, **extra) -> dict:
    before = request.args.get("before")
    ledger, older = ledger_page(product.id, whole_number_or_none(before))
    holds = active_holds(product.id)
    extra.setdefault("settings_form", ProductSettingsForm(
        formdata=None, threshold=product.low_stock_threshold, is_active=product.is_active))
    extra.setdefault("adjust_form", AdjustForm(formdata=None))
    extra.setdefault("count_form", CountForm(formdata=None))
    levels = levels_of(product.id)
    return {
        # More than one location: a row per location with its own forms (else as before).
        "levels": levels, "several": len(levels) > 1,
        "product": product, "now": now, "level_of": level_of,
        "alert": unresolved_alert(product.id),
        "chart": _chart(product, now), "ranges": RANGES,
        "ledger": ledger, "older": older, "first_ledger_page": before is None,
        "holds": holds.shown, "hold_count": holds.count, "alerts": alert_history(product.id),
        **extra,
    }


def product_page_refusal(product: Product, message: str, status: int, **context):
    """A refused adjust or count sent from this page (web/stock.py runs both): the page again,
    with the sentence, the form that was sent open and its input kept."""
    now = datetime.now(timezone.utc)
    context.pop("error", None)
    return toast(page("products/show.html", status=status, error=message,
                      **_page_context(product, now, **context)), message, "error")


@bp.get("/products/<sku:sku>")
@login_required
def show(sku: str):
    product = product_or_404(sku)
    now = datetime.now(timezone.utc)
    return page("products/show.html", "products/_ledger.html", **_page_context(product, now))


@bp.post("/products/<sku:sku>/settings")
@require("edit_stock")
@applies_once
def settings(sku: str):
    product = product_or_404(sku)
    now = datetime.now(timezone.utc)
    form = ProductSettingsForm()
    if not form.validate_on_submit():
        return refusal("products/show.html", "The settings were not saved: check the form.",
                       **_page_context(product, now, settings_form=form))
    try:
        updated = services.update_product(
            product.id, actor=services.Actor.staff(current_user), now=now,
            low_stock_threshold=form.threshold.data, is_active=form.is_active.data,
        )
    except StockroomError as error:
        form.threshold.errors = [*form.threshold.errors, error.message]
        return refusal("products/show.html", error, **_page_context(product, now, settings_form=form))
    flash(f"{updated.sku}: threshold {updated.low_stock_threshold:,}, "
          f"{'active' if updated.is_active else 'inactive'}.", "success")
    return redirect(url_for("products.show", sku=updated.sku))
