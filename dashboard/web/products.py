"""Dashboard: one product's page: figures, stock-over-time chart from the ledger, the ledger,
active holds, alert history, and its threshold and active flag."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from .. import services
from ..extensions import db
from ..models import Product, Reservation, StockAlert, StockMovement
from ..queries.params import whole_number_or_none
from ..services.alerts import level_of
from ..services.errors import StockroomError
from .access import require
from .forms import ProductSettingsForm
from .htmx import page, refusal
from .stock import unresolved_alerts

bp = Blueprint("products", __name__)

LEDGER_PAGE = 25
CHART_POINTS = 200
HOLDS_SHOWN = 50
ALERTS_SHOWN = 20


def _product_or_404(sku: str) -> Product:
    if len(sku) > 100 or not sku.isprintable():
        abort(404, description="No product has that SKU.")
    product = db.session.scalars(select(Product).where(Product.sku == sku)).first()
    if product is None:
        abort(404, description=f"No product has the SKU {sku}.")
    return product


def ledger_page(product_id: int, before: int | None) -> tuple[list[StockMovement], int | None]:
    """Most recent first, keyset on id (ix_stock_movements_product_id_id)."""
    statement = (
        select(StockMovement)
        .options(joinedload(StockMovement.actor_staff), joinedload(StockMovement.actor_api_client))
        .where(StockMovement.product_id == product_id)
        .order_by(StockMovement.id.desc())
        .limit(LEDGER_PAGE + 1)
    )
    if before is not None:
        statement = statement.where(StockMovement.id < before)
    rows = list(db.session.scalars(statement))
    older = rows[LEDGER_PAGE - 1].id if len(rows) > LEDGER_PAGE else None
    return rows[:LEDGER_PAGE], older


@dataclass
class Chart:
    """An inline SVG line chart of on hand / reserved / available (step lines)."""

    width: int
    height: int
    series: list[tuple[str, str, str]]  # (label, css class, SVG points)
    y_ticks: list[tuple[float, int]]
    x_labels: list[tuple[float, datetime]]
    summary: str
    plot_left: int
    plot_right: int
    plot_bottom: int


def stock_chart(product: Product, now: datetime) -> Chart | None:
    """Drawn server-side from the last CHART_POINTS ledger rows; None without history."""
    rows = list(db.session.execute(
        select(StockMovement.created_at, StockMovement.on_hand_after, StockMovement.reserved_after)
        .where(StockMovement.product_id == product.id)
        .order_by(StockMovement.id.desc())
        .limit(CHART_POINTS)
    ))[::-1]
    if not rows:
        return None
    width, height, left, right, top, bottom = 800, 220, 48, 12, 10, 24
    start, end = rows[0][0], max(now, rows[-1][0])
    span = max((end - start).total_seconds(), 1.0)
    top_value = max(max(r[1] for r in rows), 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(when: datetime) -> float:
        return round(left + (when - start).total_seconds() / span * plot_w, 1)

    def y(value: int) -> float:
        return round(top + plot_h - value / top_value * plot_h, 1)

    def points(value_of) -> str:
        out, previous, at = [], None, float(left)
        for when, on_hand, reserved in rows:
            value = value_of(on_hand, reserved)
            # Ledger order is commit order; concurrent writers' clocks may differ by a hair.
            at = max(at, x(when))
            if previous is not None:
                out.append(f"{at},{y(previous)}")  # step: hold the level until the change
            out.append(f"{at},{y(value)}")
            previous = value
        out.append(f"{x(end)},{y(previous)}")
        return " ".join(out)

    series = [
        ("On hand", "line-on-hand", points(lambda h, r: h)),
        ("Reserved", "line-reserved", points(lambda h, r: r)),
        ("Available", "line-available", points(lambda h, r: h - r)),
    ]
    ticks = sorted({0, top_value // 2, top_value})
    y_ticks = [(y(t), t) for t in ticks]
    x_labels = [(x(start), start), (x(end), end)]
    low = min(r[1] - r[2] for r in rows)
    summary = (f"Stock of {product.sku} over the last {len(rows)} changes: on hand now "
               f"{product.on_hand}, reserved {product.reserved}, available {product.available}; "
               f"lowest available in this period {low}, highest on hand {top_value}.")
    return Chart(width, height, series, y_ticks, x_labels, summary, left, width - right, top + plot_h)


def _before_arg() -> int | None:
    return whole_number_or_none(request.args.get("before"))


def _page_context(product: Product, now: datetime, **extra) -> dict:
    ledger, older = ledger_page(product.id, _before_arg())
    holds = list(db.session.scalars(
        select(Reservation)
        .where(Reservation.product_id == product.id, Reservation.status == "active")
        .order_by(Reservation.expires_at, Reservation.id)
        .limit(HOLDS_SHOWN)
    ))
    hold_count = db.session.scalar(
        select(func.count()).select_from(Reservation)
        .where(Reservation.product_id == product.id, Reservation.status == "active")
    )
    alerts = list(db.session.scalars(
        select(StockAlert)
        .options(joinedload(StockAlert.resolved_by), joinedload(StockAlert.acknowledged_by))
        .where(StockAlert.product_id == product.id)
        .order_by(StockAlert.opened_at.desc(), StockAlert.id.desc())
        .limit(ALERTS_SHOWN)
    ))
    extra.setdefault("settings_form", ProductSettingsForm(
        formdata=None, threshold=product.low_stock_threshold, is_active=product.is_active))
    return {
        "product": product, "now": now, "level_of": level_of,
        "alert": unresolved_alerts([product.id]).get(product.id),
        "chart": stock_chart(product, now), "ledger": ledger, "older": older,
        "first_ledger_page": request.args.get("before") is None,
        "holds": holds, "hold_count": hold_count, "alerts": alerts, **extra,
    }


@bp.get("/products/<path:sku>")
@login_required
def show(sku: str):
    product = _product_or_404(sku)
    now = datetime.now(timezone.utc)
    return page("products/show.html", "products/_ledger.html", **_page_context(product, now))


@bp.post("/products/<path:sku>/settings")
@require("edit_stock")
def settings(sku: str):
    product = _product_or_404(sku)
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
