"""Dashboard: the stock list (search by words, filters with counts, sort, keyset pages), adjust
and count in a panel fetched when a row asks for it, and the CSV count import (dry run, then
apply). Reads are in queries/stock.py."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..models import Location, Product
from ..queries.catalogue import categories, product_for_code
from ..queries.params import whole_number_or_none
from ..queries.stock import (PAGE_SIZE, AtLocation, StockQuery, available_at, level_at,
                              location_columns, product_by_id, reread_product,
                              several_locations, stock_page, unresolved_alert)
from ..services.alerts import level_of
from ..services.wording import plural
from ..services.errors import ImportRejected, InvalidInput, StaleCount, StockroomError
from ..services.locations import UnknownLocation, all_locations, find_location
from .access import require
from .forms import AdjustForm, ApplyImportForm, CountForm, ImportForm, first_error
from .htmx import is_htmx, page, refused, row_answer, trigger
from .navigation import local_path, safe_next
from .once import applies_once
from .products import product_page_refusal

bp = Blueprint("stock", __name__)

MAX_IMPORT_BYTES = 2_000_000


@bp.get("/stock")
@login_required
def index():
    query = StockQuery.from_args(request.args)
    if request.args.get("scan") and query.q:
        # Scan to find: a scanner types the code and Enter; an exact barcode or SKU opens it.
        sku = product_for_code(query.q)
        if sku is not None:
            return redirect(url_for("products.show", sku=sku))
    start = whole_number_or_none(request.args.get("start"), max_digits=9) or 1
    locations = all_locations(active_only=True)
    location, unknown_location = None, None
    if query.location:
        try:
            location = find_location(query.location)
        except UnknownLocation:
            # A stale bookmark or a typed code: say so and show every location.
            unknown_location, query.location = query.location, ""
    columns = location_columns(locations) if location is None else []
    result = stock_page(query, request.args.get("after"), request.args.get("before"), start,
                        location=location, columns=columns)
    return page("stock/index.html", "stock/_results.html", query=query, result=result,
                back=request.full_path, level_of=level_of, categories=categories(),
                page_size=PAGE_SIZE, locations=locations, location=location,
                unknown_location=unknown_location)


# --- adjust and count (the row's panel) --------------------------------------------------

def _product_or_404(product_id: int) -> Product:
    found = product_by_id(product_id)
    if found is None:
        abort(404, description="That product does not exist (it may have been removed).")
    return found


@bp.get("/stock/<id32:product_id>/change")
@require("edit_stock")
def change(product_id: int):
    """The adjust and count forms of one product: the panel a row opens (htmx), or a page of
    their own without JavaScript."""
    product = _product_or_404(product_id)
    # The list it was opened from: the htmx request's page, or the page that linked here.
    came_from = request.headers.get("HX-Current-URL") if is_htmx() else request.referrer
    back = (safe_next(request.args.get("next")) or safe_next(local_path(came_from))
            or url_for("stock.index"))
    if not back.startswith(url_for("stock.index")):
        back = url_for("stock.index")
    # A list at one location changes stock there; the list of all locations, at the default.
    code = request.args.get("location", "")
    try:
        place = find_location(code or None)
    except UnknownLocation:
        abort(404, description=f"There is no location {code[:20]!r}.")
    return page("stock/row_page.html", "stock/_change.html", product=product, back=back,
                **_where(product, place, named=bool(code)))


def _where(product: Product, place: Location, *, named: bool) -> dict:
    """The panel's location: which one its forms change (`named`: the list is at it, so the
    forms say so and its row shows the figures there) and the level's figures."""
    return {"place": place, "named": named, "several": several_locations(),
            "figures": level_at(product.id, place.id)}


def _place_of(form) -> tuple[Location | None, str | None]:
    """The location a form names (the default when it names none), or the refusal."""
    try:
        return find_location(form.location.data or None), None
    except UnknownLocation as error:
        return None, error.message


def _row_answer(product: Product, *, message: str, level: str, status: int = 200,
                place: Location | None = None, **context):
    """htmx: the panel re-rendered (its refusal in place) with the list's row swapped out of
    band, and on success an event that closes the panel. A plain form post: back to the list
    the staff member came from, or the forms on a page of their own when refused."""
    back = safe_next(request.form.get("next")) or url_for("stock.index")
    if status >= 400 and not is_htmx() and request.form.get("from") == "product":
        # The product page's own forms: the refusal comes back on that page, input kept.
        return product_page_refusal(product, message, status,
                                    form_location=place.code if place else None, **context)
    named = bool(request.form.get("location")) and place is not None
    where = _where(product, place or find_location(None), named=named)
    if named:
        row = AtLocation(product, where["figures"].on_hand, where["figures"].reserved, place.code)
        columns = []
    else:  # the list of all locations: its row keeps a column per location
        row, columns = product, location_columns(all_locations(active_only=True))
    response = row_answer(
        "stock/_change.html", "stock/row_page.html", back_to=back,
        message=message, level=level, status=status,
        product=product, row=row, alert=unresolved_alert(product.id), level_of=level_of,
        back=back, row_too=True, columns=columns,
        available=available_at([product.id], [c.id for c in columns]).get(product.id),
        **where, **context,
    )
    if status < 400 and is_htmx():
        trigger(response, "stock-changed", {"product_id": product.id})
        trigger(response, "stock-panel-close", {"product_id": product.id})
    return response


def _refusal(product: Product, error, status: int | None = None, **context):
    """The row's answer to a refused change: the sentence shown in the row and in a toast."""
    message, status = refused(error, status)
    return _row_answer(product, message=message, level="error", status=status, error=message,
                       **context)


def _signed(delta: int) -> str:
    return f"+{delta:,}" if delta > 0 else f"−{abs(delta):,}"


@bp.post("/stock/<id32:product_id>/adjust")
@require("edit_stock")
@applies_once
def adjust(product_id: int):
    product = _product_or_404(product_id)
    form = AdjustForm()
    place, unknown = _place_of(form)
    if place is None:
        return _refusal(product, unknown, adjust_form=form)
    if not form.validate_on_submit():
        return _refusal(product, first_error(form), adjust_form=form, place=place)
    before, alert_before = level_at(product.id, place.id).on_hand, _alert_kind(product.id)
    try:
        product = services.adjust(
            product.id, form.delta.data, reason=form.reason.data, location=place,
            actor=services.Actor.staff(current_user), now=datetime.now(timezone.utc),
        )
    except StockroomError as error:
        _field_error(form, error, "delta")
        return _refusal(reread_product(product_id), error, adjust_form=form, place=place)
    after = level_at(product.id, place.id).on_hand
    return _row_answer(product, level="success", updated=True, place=place,
                       message=f"{product.sku}: on hand{_at(place)} {before:,} → {after:,}"
                               f" ({_signed(after - before)})."
                               + _alert_news(product, alert_before))


def _at(place: Location) -> str:
    """' at CODE' in a shop with several locations; unsaid in a shop with one."""
    return f" at {place.code}" if several_locations() else ""


@bp.post("/stock/<id32:product_id>/count")
@require("edit_stock")
@applies_once
def count(product_id: int):
    product = _product_or_404(product_id)
    form = CountForm()
    place, unknown = _place_of(form)
    if place is None:
        return _refusal(product, unknown, count_form=form, expected=form.expected.data)
    if not form.validate_on_submit():
        # Keep the figure the counter saw, so a later save still detects a change since then.
        expected = form.expected.data if not form.expected.errors else None
        return _refusal(product, first_error(form), count_form=form, expected=expected,
                        place=place)
    alert_before = _alert_kind(product.id)
    try:
        product = services.count(
            product.id, form.counted.data, form.expected.data, note=form.note.data,
            location=place, actor=services.Actor.staff(current_user),
            now=datetime.now(timezone.utc),
        )
    except StaleCount as error:
        message = (f"Stock changed since you loaded this page: on hand{_at(place)} is now "
                   f"{error.current_on_hand:,}, not {form.expected.data:,}. Check your count "
                   f"and save again to set it to {form.counted.data:,}.")
        return _refusal(reread_product(product_id), message, status=409, count_form=form,
                        stale=True, place=place)
    except StockroomError as error:
        _field_error(form, error, "counted")
        return _refusal(reread_product(product_id), error, count_form=form,
                        expected=form.expected.data, place=place)
    delta = form.counted.data - form.expected.data
    change = f" ({_signed(delta)})" if delta else " (no change)"
    return _row_answer(product, level="success", updated=True, place=place,
                       message=f"{product.sku}: counted {form.counted.data:,}{_at(place)}{change}."
                               + _alert_news(product, alert_before))


def _alert_kind(product_id: int) -> str | None:
    """The kind of the product's unresolved alert, as a plain value (read before a change)."""
    alert = unresolved_alert(product_id)
    return alert.kind if alert is not None else None


def _alert_news(product: Product, before: str | None) -> str:
    """What the change did to the product's alert, for the success message."""
    after = _alert_kind(product.id)
    if after is not None and after != before:
        return f" {'Out of stock' if after == 'OUT_OF_STOCK' else 'Low stock'} alert opened."
    if after is None and before is not None:
        return " Its alert was resolved."
    return ""


def _field_error(form, error: StockroomError, default_field: str) -> None:
    """Show a service refusal next to the field it is about (form.errors are per field)."""
    name = getattr(error, "field", None) if isinstance(error, InvalidInput) else None
    field = getattr(form, name or default_field, None) or getattr(form, default_field)
    field.errors = [*field.errors, error.message]


# --- CSV import --------------------------------------------------------------------------

@bp.get("/stock/import")
@require("edit_stock")
def import_form():
    return _import_page(form=ImportForm(formdata=None), report=None)


@bp.post("/stock/import")
@require("edit_stock")
def import_counts():
    actor, now = services.Actor.staff(current_user), datetime.now(timezone.utc)
    if request.form.get("step") == "apply":
        return _apply_import(actor, now)
    form = ImportForm()
    if not form.validate_on_submit():
        return _import_page(status=422, form=form, report=None)
    raw = form.file.data.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        form.file.errors.append(f"the file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB; split it")
        return _import_page(status=422, form=form, report=None)
    try:
        text = raw.decode("utf-8-sig")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
    except UnicodeDecodeError:
        form.file.errors.append("the file is not UTF-8 text; save it as CSV (UTF-8)")
        return _import_page(status=422, form=form, report=None)
    try:
        report = services.import_counts(text, actor=actor, now=now, apply=False)
    except InvalidInput as error:
        form.file.errors.append(error.message)
        return _import_page(status=422, form=form, report=None)
    return _import_page(form=ImportForm(formdata=None), report=report,
                apply_form=_apply_form(text, report), file_name=form.file.data.filename)


def _import_page(**context):
    """The import page: its help and report name the default location."""
    return page("stock/import.html", default_location=find_location(None), **context)


def _apply_form(text: str, report) -> ApplyImportForm:
    """The confirmation: the checked file and the on-hand figures its report showed."""
    return ApplyImportForm(formdata=None, csv_text=text,
                           on_hand_seen=ApplyImportForm.encode_seen(report.on_hand_seen))


@applies_once
def _apply_import(actor, now):
    apply_form = ApplyImportForm()
    form = ImportForm(formdata=None)
    if not apply_form.validate_on_submit():
        flash(first_error(apply_form), "error")
        return _import_page(status=422, form=form, report=None)
    try:
        report = services.import_counts(apply_form.csv_text.data, actor=actor, now=now,
                                        apply=True, on_hand_seen=apply_form.seen)
    except ImportRejected as error:
        # Stock moved between the check and the apply: show the fresh report, nothing applied;
        # its form carries the new figures, so applying again confirms them.
        return _import_page(status=409, form=form, report=error.report,
                    apply_form=_apply_form(apply_form.csv_text.data, error.report),
                    error=error.message)
    except InvalidInput as error:
        return _import_page(status=422, form=form, report=None, error=error.message)
    matched = len(report.rows) - len(report.changes)
    flash(f"Import applied: {plural(len(report.changes), 'product')} changed, "
          f"{matched:,} already matched.", "success")
    return redirect(url_for("stock.index"))
