"""Dashboard: the stock list (search, filters, sort, keyset pages), inline adjust and count,
and the CSV count import (dry run, then apply)."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import and_, or_, select, text, tuple_

from .. import services
from ..extensions import db
from ..models import Product, StockAlert
from ..services.alerts import UNRESOLVED, level_of
from ..services.errors import ImportRejected, InvalidInput, StaleCount, StockroomError
from .access import require
from .navigation import safe_next
from .forms import AdjustForm, ApplyImportForm, CountForm, ImportForm, first_error
from .htmx import is_htmx, page, refusal, toast, trigger

bp = Blueprint("stock", __name__)

PAGE_SIZE = 50
FILTERS = ("all", "low", "out", "inactive")
SORTS = {
    "sku": Product.sku,
    "name": Product.name,
    "on_hand": Product.on_hand,
    "reserved": Product.reserved,
    "available": Product.on_hand - Product.reserved,
    "threshold": Product.low_stock_threshold,
}
MAX_QUERY = 100
# Trigram indexes need three characters; shorter text can only be a whole (short) SKU.
MIN_SEARCH = 3
MAX_IMPORT_BYTES = 2_000_000


@dataclass
class StockQuery:
    """What the staff member asked the list for; parsed defensively from the query string."""

    q: str = ""
    filter: str = "all"
    sort: str = "sku"
    dir: str = "asc"

    @classmethod
    def from_args(cls, args) -> StockQuery:
        q = "".join(c for c in args.get("q", "") if c.isprintable()).strip()[:MAX_QUERY]
        filter_ = args.get("filter", "all")
        sort = args.get("sort", "sku")
        direction = args.get("dir", "asc")
        return cls(
            q=q,
            filter=filter_ if filter_ in FILTERS else "all",
            sort=sort if sort in SORTS else "sku",
            dir=direction if direction in ("asc", "desc") else "asc",
        )

    def args(self, **changes) -> dict:
        """Query-string arguments for a link, without defaults (short, shareable URLs)."""
        values = {"q": self.q, "filter": self.filter, "sort": self.sort, "dir": self.dir, **changes}
        defaults = {"q": "", "filter": "all", "sort": "sku", "dir": "asc"}
        return {k: v for k, v in values.items() if v is not None and v != defaults.get(k)}


@dataclass
class StockPage:
    products: list[Product]
    alerts: dict[int, StockAlert]
    next_cursor: str | None
    previous_cursor: str | None  # None on the first page


def encode_cursor(value, product_id: int) -> str:
    raw = json.dumps([value, product_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, sort: str):
    """(value, id) from a cursor, or None when it is missing or not one of ours."""
    if not cursor or len(cursor) > 600:
        return None
    try:
        value, product_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        return None
    wants_text = sort in ("sku", "name")
    if not isinstance(product_id, int) or isinstance(product_id, bool):
        return None
    if (wants_text and not isinstance(value, str)) or (
        not wants_text and (not isinstance(value, int) or isinstance(value, bool))
    ):
        return None
    if (not wants_text and abs(value) > 2**31) or abs(product_id) > 2**31:
        return None
    if wants_text and "\x00" in value:  # PostgreSQL text cannot hold NUL: never a real value
        return None
    return value, product_id


def alerting():
    """At or below the threshold (low or out), as services.alerts.level_of says, written the
    way the partial index ix_products_alerting is, so PostgreSQL reads only those rows."""
    return and_(Product.is_active, Product.on_hand - Product.reserved <= Product.low_stock_threshold)


def is_low():
    return and_(alerting(), Product.on_hand - Product.reserved > 0)


def is_out():
    # threshold >= 0 (CHECK), so available <= 0 is always within the alerting rows.
    return and_(alerting(), Product.on_hand - Product.reserved <= 0)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _cursor_of(product: Product, sort: str) -> str:
    value = product.available if sort == "available" else getattr(
        product, "low_stock_threshold" if sort == "threshold" else sort
    )
    return encode_cursor(value, product.id)


def stock_page(query: StockQuery, cursor: str | None, before: str | None = None) -> StockPage:
    """One keyset page: WHERE (sort, id) beyond the cursor ORDER BY sort, id LIMIT n+1 (no OFFSET).

    `cursor` pages forward from a row; `before` pages back from one (the same query the
    other way round, then reversed)."""
    column = SORTS[query.sort]
    statement = select(Product)
    if query.q and len(query.q) < MIN_SEARCH:
        statement = statement.where(Product.sku.in_({query.q, query.q.upper()}))
    elif query.q:
        # ILIKE '%q%' is what the trigram indexes (ix_products_sku_trgm/name_trgm) serve. A
        # cached generic plan cannot see the pattern and walks the sort index instead (150 ms
        # at 100k products), so plan each search for its own pattern.
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        pattern = _like(query.q)
        statement = statement.where(
            or_(Product.sku.ilike(pattern, escape="\\"), Product.name.ilike(pattern, escape="\\"))
        )
    if query.filter == "low":
        statement = statement.where(is_low())
    elif query.filter == "out":
        statement = statement.where(is_out())
    elif query.filter == "inactive":
        statement = statement.where(~Product.is_active)
    position = decode_cursor(cursor, query.sort)
    back = decode_cursor(before, query.sort) if position is None else None
    ascending = (query.dir == "asc") != (back is not None)
    if position is not None or back is not None:
        beyond = tuple_(column, Product.id)
        edge = tuple_(*(position or back))
        statement = statement.where(beyond > edge if ascending else beyond < edge)
    order = column
    if len(query.q) >= MIN_SEARCH:
        # Sort the matches rather than walk the sort index testing every row: when they sit
        # late in that order ('TSH' SKUs, a rare word) the walk reads the whole table (250 ms
        # at 100k products, vs <= 30 ms via the trigram indexes). The no-op hides the index.
        order = column.concat("") if query.sort in ("sku", "name") else column + 0
    if ascending:
        statement = statement.order_by(order.asc(), Product.id.asc())
    else:
        statement = statement.order_by(order.desc(), Product.id.desc())
    rows = list(db.session.scalars(statement.limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if back is not None:
        rows.reverse()
        next_cursor = _cursor_of(rows[-1], query.sort) if rows else None
        previous_cursor = _cursor_of(rows[0], query.sort) if more else None
    else:
        next_cursor = _cursor_of(rows[-1], query.sort) if more else None
        previous_cursor = _cursor_of(rows[0], query.sort) if position is not None and rows else None
    return StockPage(rows, unresolved_alerts([p.id for p in rows]), next_cursor, previous_cursor)


def unresolved_alerts(product_ids: list[int]) -> dict[int, StockAlert]:
    if not product_ids:
        return {}
    alerts = db.session.scalars(
        select(StockAlert).where(
            StockAlert.product_id.in_(product_ids), StockAlert.status.in_(UNRESOLVED)
        )
    )
    return {alert.product_id: alert for alert in alerts}


@bp.get("/stock")
@login_required
def index():
    query = StockQuery.from_args(request.args)
    result = stock_page(query, request.args.get("after"), request.args.get("before"))
    return page("stock/index.html", "stock/_results.html", query=query, result=result,
                back=request.full_path, level_of=level_of)


# --- inline adjust and count -------------------------------------------------------------

def _product(product_id: int) -> Product:
    product = db.session.get(Product, product_id) if 0 < product_id < 2**31 else None
    if product is None:
        abort(404, description="That product does not exist (it may have been removed).")
    return product


def _fresh(product_id: int) -> Product:
    return db.session.scalars(
        select(Product).where(Product.id == product_id).execution_options(populate_existing=True)
    ).one()


def _row_context(product: Product, **context) -> dict:
    context.setdefault("back", safe_next(request.form.get("next")) or url_for("stock.index"))
    return {
        "product": product,
        "alert": unresolved_alerts([product.id]).get(product.id),
        "level_of": level_of,
        **context,
    }


def _row_refused(product: Product, error, status: int | None = None, **context):
    """The row re-rendered with the refusal in place (htmx) or on its own page (no JS)."""
    template = "stock/_row.html" if is_htmx() else "stock/row_page.html"
    return refusal(template, error, status=status, **_row_context(product, **context))


def _row_done(product: Product, message: str):
    if not is_htmx():
        flash(message, "success")
        return redirect(safe_next(request.form.get("next")) or url_for("stock.index"))
    response = page("stock/_row.html", **_row_context(product, updated=True))
    trigger(response, "stock-changed", {"product_id": product.id})
    return toast(response, message, "success")


def _signed(delta: int) -> str:
    return f"+{delta:,}" if delta > 0 else f"−{abs(delta):,}"


@bp.post("/stock/<int:product_id>/adjust")
@require("edit_stock")
def adjust(product_id: int):
    product = _product(product_id)
    form = AdjustForm()
    if not form.validate_on_submit():
        return _row_refused(product, first_error(form), adjust_form=form, open_form="adjust")
    before = product.on_hand
    try:
        product = services.adjust(
            product.id, form.delta.data, reason=form.reason.data,
            actor=services.Actor.staff(current_user), now=datetime.now(timezone.utc),
        )
    except StockroomError as error:
        _field_error(form, error, "delta")
        return _row_refused(_fresh(product_id), error, adjust_form=form, open_form="adjust")
    return _row_done(product, f"{product.sku}: on hand {before:,} → {product.on_hand:,}"
                              f" ({_signed(product.on_hand - before)}).")


@bp.post("/stock/<int:product_id>/count")
@require("edit_stock")
def count(product_id: int):
    product = _product(product_id)
    form = CountForm()
    if not form.validate_on_submit():
        # Keep the figure the counter saw, so a later save still detects a change since then.
        expected = form.expected.data if not form.expected.errors else None
        return _row_refused(product, first_error(form), count_form=form, open_form="count",
                            expected=expected)
    try:
        product = services.count(
            product.id, form.counted.data, form.expected.data, note=form.note.data,
            actor=services.Actor.staff(current_user), now=datetime.now(timezone.utc),
        )
    except StaleCount as error:
        message = (f"Stock changed since you loaded this page: on hand is now "
                   f"{error.current_on_hand:,}, not {form.expected.data:,}. Check your count "
                   f"and save again to set it to {form.counted.data:,}.")
        return _row_refused(_fresh(product_id), message, status=409, count_form=form,
                            open_form="count", stale=True)
    except StockroomError as error:
        _field_error(form, error, "counted")
        return _row_refused(_fresh(product_id), error, count_form=form, open_form="count",
                            expected=form.expected.data)
    delta = form.counted.data - form.expected.data
    change = f" ({_signed(delta)})" if delta else " (no change)"
    return _row_done(product, f"{product.sku}: counted {product.on_hand:,}{change}.")


def _field_error(form, error: StockroomError, default_field: str) -> None:
    """Show a service refusal next to the field it is about (form.errors are per field)."""
    name = getattr(error, "field", None) if isinstance(error, InvalidInput) else None
    field = getattr(form, name or default_field, None) or getattr(form, default_field)
    field.errors = [*field.errors, error.message]


# --- CSV import --------------------------------------------------------------------------

@bp.get("/stock/import")
@require("edit_stock")
def import_form():
    return page("stock/import.html", form=ImportForm(formdata=None), report=None)


@bp.post("/stock/import")
@require("edit_stock")
def import_counts():
    actor, now = services.Actor.staff(current_user), datetime.now(timezone.utc)
    if request.form.get("step") == "apply":
        return _apply_import(actor, now)
    form = ImportForm()
    if not form.validate_on_submit():
        return page("stock/import.html", status=422, form=form, report=None)
    raw = form.file.data.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        form.file.errors.append(f"the file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB; split it")
        return page("stock/import.html", status=422, form=form, report=None)
    try:
        text = raw.decode("utf-8-sig")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
    except UnicodeDecodeError:
        form.file.errors.append("the file is not UTF-8 text; save it as CSV (UTF-8)")
        return page("stock/import.html", status=422, form=form, report=None)
    try:
        report = services.import_counts(text, actor=actor, now=now, apply=False)
    except InvalidInput as error:
        form.file.errors.append(error.message)
        return page("stock/import.html", status=422, form=form, report=None)
    apply_form = ApplyImportForm(formdata=None, csv_text=text)
    return page("stock/import.html", form=ImportForm(formdata=None), report=report,
                apply_form=apply_form, file_name=form.file.data.filename)


def _apply_import(actor, now):
    apply_form = ApplyImportForm()
    form = ImportForm(formdata=None)
    if not apply_form.validate_on_submit():
        flash(first_error(apply_form), "error")
        return page("stock/import.html", status=422, form=form, report=None)
    try:
        report = services.import_counts(apply_form.csv_text.data, actor=actor, now=now, apply=True)
    except ImportRejected as error:
        # Stock moved between the check and the apply: show the fresh report, nothing applied.
        return page("stock/import.html", status=409, form=form, report=error.report,
                    apply_form=apply_form, error=error.message)
    except InvalidInput as error:
        return page("stock/import.html", status=422, form=form, report=None, error=error.message)
    flash(f"Import applied: {len(report.changes):,} products changed, "
          f"{len(report.rows) - len(report.changes):,} already matched.", "success")
    return redirect(url_for("stock.index"))
