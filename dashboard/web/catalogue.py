"""Dashboard: the catalogue: the product form (create, edit, deactivate), the product CSV
import (check, then apply) and the CSV export. Reads are in queries/; changes go through
services/catalogue.py and services/product_import.py."""
from __future__ import annotations

import io
from datetime import datetime, timezone

from flask import Blueprint, Response, flash, make_response, redirect, request, url_for
from flask_login import current_user, login_required

from ..queries.catalogue import categories, export_rows
from ..queries.products import active_holds
from ..services import Actor
from ..services.catalogue import upsert_product
from ..services.catalogue_csv import write
from ..services.errors import ImportRejected, InvalidInput, StockroomError
from ..services.product_import import check_products, import_products
from .access import require
from .forms import first_error
from .htmx import is_htmx, page, refusal
from .once import applies_once
from .products import product_or_404
from .product_forms import ApplyProductImportForm, DeactivateForm, ProductForm, ProductImportForm

bp = Blueprint("catalogue", __name__)

MAX_IMPORT_BYTES = 32_000_000
SHOWN_ROWS = 500


def _actor_now():
    return Actor.staff(current_user), datetime.now(timezone.utc)


def _field_errors(form, error: StockroomError) -> None:
    fields = getattr(error, "fields", None) or {}
    for name, message in fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message]


def _form_page(status: int = 200, **context):
    return page("products/form.html", status=status, categories=categories(), **context)


def _form_refusal(error, **context):
    return refusal("products/form.html", error, categories=categories(), **context)


def _saved(outcome, product):
    verb = {"created": "created", "updated": "saved", "unchanged": "unchanged (nothing to save)"}
    flash(f"{product.sku}: {verb[outcome.status]}.", "success")
    return redirect(url_for("products.show", sku=product.sku))


@bp.route("/products/new", methods=["GET", "POST"])
@require("edit_stock")
@applies_once
def new_product():
    form = ProductForm()
    if request.method == "GET" or not form.validate_on_submit():
        if request.method == "GET":
            return _form_page(form=form, product=None)
        return _form_page(422, form=form, product=None, error=first_error(form))
    actor, now = _actor_now()
    try:
        outcome, product = upsert_product(
            form.sku.data, {**form.catalogue_values(), "on_hand": form.on_hand.data or 0},
            actor=actor, now=now, new=True)
    except StockroomError as error:
        _field_errors(form, error)
        return _form_refusal(error, form=form, product=None)
    return _saved(outcome, product)


@bp.route("/products/<sku:sku>/edit", methods=["GET", "POST"])
@require("edit_stock")
@applies_once
def edit_product(sku: str):
    product = product_or_404(sku)
    if request.method == "GET":
        form = ProductForm(formdata=None, obj=product)
        return _form_page(form=form, product=product)
    form = ProductForm()
    del form.sku  # the SKU names the product; it is not edited here
    del form.on_hand  # stock changes go through receive, adjust or count
    if not form.validate_on_submit():
        return _form_page(422, form=form, product=product, error=first_error(form))
    actor, now = _actor_now()
    try:
        outcome, saved = upsert_product(product.sku, form.catalogue_values(), actor=actor,
                                        now=now, new=False)
    except StockroomError as error:
        _field_errors(form, error)
        return _form_refusal(error, form=form, product=product)
    return _saved(outcome, saved)


@bp.route("/products/<sku:sku>/deactivate", methods=["GET", "POST"])
@require("edit_stock")
@applies_once
def deactivate_product(sku: str):
    product = product_or_404(sku)
    holds = active_holds(product.id).count
    form = DeactivateForm()
    if request.method == "GET" or not form.validate_on_submit():
        return page("products/deactivate.html", form=form, product=product, hold_count=holds)
    actor, now = _actor_now()
    try:
        _, saved = upsert_product(product.sku, {"is_active": False}, actor=actor, now=now,
                                  new=False)
    except StockroomError as error:
        return refusal("products/deactivate.html", error, form=form, product=product,
                       hold_count=holds)
    flash(f"{saved.sku} is inactive: new holds are refused; its {holds:,} active holds stay.",
          "success")
    return redirect(url_for("products.show", sku=saved.sku))


# --- product CSV import ------------------------------------------------------------------

@bp.get("/stock/products-import")
@require("edit_stock")
def import_page():
    return page("stock/products_import.html", form=ProductImportForm(formdata=None), report=None)


def _uploaded(form) -> bytes | None:
    data = form.file.data.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        form.file.errors = [*form.file.errors,
                            f"the file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB; split it"]
        return None
    return data


def _import_answer(status: int = 200, **context):
    context.setdefault("form", ProductImportForm(formdata=None))
    context.setdefault("report", None)
    context.setdefault("shown", SHOWN_ROWS)
    context["fragment"] = is_htmx()
    return page("stock/products_import.html", "stock/_products_import_report.html",
                status=status, **context)


@bp.post("/stock/products-import")
@require("edit_stock")
def check_import():
    form = ProductImportForm()
    if not form.validate_on_submit():
        return _import_answer(422, form=form, error=first_error(form))
    data = _uploaded(form)
    if data is None:
        return _import_answer(422, form=form, error=form.file.errors[-1])
    try:
        report = check_products(data)
    except InvalidInput as error:
        return _import_answer(422, form=form, error=error.message)
    return _import_answer(report=report, file_name=form.file.data.filename,
                          apply_form=ApplyProductImportForm(formdata=None, digest=report.digest))


@bp.post("/stock/products-import/apply")
@require("edit_stock")
@applies_once
def apply_import():
    apply_form, form = ApplyProductImportForm(), ProductImportForm()
    if not apply_form.validate_on_submit() or not form.validate():
        return _import_answer(422, error=first_error(apply_form) if apply_form.errors else
                              "the file is missing: choose the checked file again")
    data = _uploaded(form)
    if data is None:
        return _import_answer(422, error=form.file.errors[-1])
    actor, now = _actor_now()
    try:
        report = import_products(data, actor=actor, now=now,
                                 expected_digest=apply_form.digest.data)
    except ImportRejected as error:
        # Something changed since the check (a barcode taken meanwhile): the fresh report.
        return _import_answer(409, report=error.report, error=error.message)
    except StockroomError as error:
        return _import_answer(422, error=error.message)
    flash(f"Products imported: {len(report.creates):,} created, {len(report.updates):,} updated,"
          f" {report.unchanged:,} unchanged.", "success")
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url_for("stock.index")
        return response
    return redirect(url_for("stock.index"))


@bp.get("/stock/products.csv")
@login_required
def export():
    """Every product with its stock figures; the product import reads it back unchanged."""
    out = io.StringIO()
    write(export_rows(), out)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="products-{stamp}.csv"'})
