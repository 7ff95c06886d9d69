"""Holds console (SPEC §6): active holds, why a hold is stuck, release and extend."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, make_response, redirect, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..queries.holds import HoldFilters, active_holds, hold_row, skus_of
from ..queries.params import whole_number_or_none
from ..services.errors import InvalidInput, StockroomError
from ..services.locations import all_locations
from .access import require
from .forms import ExtendForm, ReasonForm
from .htmx import is_htmx, page, row_answer, toast, trigger
from .once import applies_once

bp = Blueprint("holds", __name__)

SHOW_CHOICES = ("all", "expiring", "stuck")
MAX_SELECTED = 500


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _filters(source) -> HoldFilters:
    show = source.get("filter", "all")
    return HoldFilters(
        sku=source.get("sku", "").strip()[:100],
        owner=source.get("owner", "").strip()[:100],
        show=show if show in SHOW_CHOICES else "all",
        location="".join(c for c in source.get("location", "") if c.isprintable())
        .strip()[:20].upper(),
    )


def _results(filters: HoldFilters, now: datetime, **extra) -> dict:
    after = (request.values.get("after") or "")[:64]
    return {
        "filters": filters, "after": after, "now": now,
        "locations": all_locations(active_only=True),
        "result": active_holds(filters, now, after=after or None),
        "release_form": extra.pop("release_form", None) or ReasonForm(formdata=None),
        **extra,
    }


@bp.get("/holds")
@login_required
def index():
    now = _now()
    return page("holds/index.html", "holds/_results.html", **_results(_filters(request.args), now))


def _selected_ids() -> list[int] | None:
    """The ticked holds as ids, or None if any value is not a hold id."""
    values = request.form.getlist("ids")
    if len(values) > MAX_SELECTED:
        return None
    ids = [whole_number_or_none(value) for value in values]
    return None if None in ids else ids


@bp.post("/holds/release")
@require("manage_holds")
@applies_once
def release_many():
    now = _now()
    filters = _filters(request.form)
    form = ReasonForm()
    ids = _selected_ids()
    valid = form.validate()  # every error at once, not one per submit
    problem = None
    if ids is None:
        problem = "That selection is not a list of holds; reload the page and tick again."
    elif not ids:
        problem = "Tick at least one hold to release."
    if problem is None and valid:
        try:
            result = services.release_many(
                ids, actor=services.Actor.staff(current_user), reason=form.reason.data, now=now)
        except InvalidInput as error:
            form.reason.errors = [error.message]
        else:
            return _released(result, filters, now)
    context = _results(filters, now, release_form=form, selected=set(ids or ()),
                       problem=problem)
    response = page("holds/index.html", "holds/_results.html", status=422, **context)
    return toast(response, problem or "Nothing was released: fix the form.", "error")


NAMED_IN_TOAST = 10


def released_names(holds) -> str:
    """'hold 12 (PEN-1 × 2), hold 15 (MUG-3 × 1)': which holds went, for the toast (the
    first NAMED_IN_TOAST; the rest as a number). SKUs in one statement, not one per hold."""
    holds = list(holds)
    skus = skus_of({h.product_id for h in holds[:NAMED_IN_TOAST]})
    named = ", ".join(f"hold {h.id} ({skus.get(h.product_id, '?')} × {h.quantity})"
                      for h in holds[:NAMED_IN_TOAST])
    rest = len(holds) - NAMED_IN_TOAST
    return named + (f" and {rest} more" if rest > 0 else "")


def _released(result, filters: HoldFilters, now: datetime):
    """Released holds leave the list (it shows active holds only), one or many alike."""
    count = len(result.released)
    message = f"Released {count} hold{'s' if count != 1 else ''}"
    message += f": {released_names(result.released)}." if count else "."
    if result.refused:
        message += f" {len(result.refused)} not released (see below)."
    if not is_htmx():
        flash(message, "success" if not result.refused else "warning")
        for _, why in result.refused:
            flash(why, "warning")
        return redirect(url_for("holds.index", **filters.as_args()))
    response = page("holds/index.html", "holds/_results.html",
                    **_results(filters, now, refused=result.refused))
    if count:
        _stock_changed(response)
    return toast(response, message, "success" if not result.refused else "warning")


def _stock_changed(response):
    # Released units change `available`, and with it maybe an alert: badges and tiles refresh.
    trigger(response, "stock-changed")
    return trigger(response, "alerts-changed")


def _row_response(hold_id: int, now: datetime, *, message: str, level: str, status: int = 200,
                  **context):
    """The hold's row re-rendered in place (htmx), or back to the console (plain form post)."""
    row = hold_row(hold_id, now)
    if row is None:
        abort(404, description=f"Hold {hold_id} does not exist.")
    return row_answer(
        "holds/_row.html", "holds/row_page.html", back_to=url_for("holds.index"),
        message=message, level=level, status=status,
        alone_context={"row_message": context.get("row_message", message)},
        row=row, now=now, **context,
    )


@bp.get("/holds/<id64:hold_id>/actions")
@require("manage_holds")
def actions(hold_id: int):
    """A hold's release and extend forms, fetched when its row in the list is opened; without
    htmx, the hold's own page with them open."""
    now = _now()
    row = hold_row(hold_id, now)
    if row is None:
        abort(404, description=f"Hold {hold_id} does not exist.")
    if row.hold.status != "active":
        return page("holds/row_page.html", "holds/_row_ended.html", row=row, h=row.hold,
                    now=now)
    return page("holds/row_page.html", "holds/_row_forms.html", row=row, h=row.hold, now=now,
                open_actions=True)


@bp.post("/holds/<id64:hold_id>/release")
@require("manage_holds")
@applies_once
def release(hold_id: int):
    now = _now()
    form = ReasonForm()
    if not form.validate():
        return _row_response(hold_id, now, message="Not released: a reason is required.",
                             level="error", status=422, row_release_form=form, open_actions=True)
    try:
        hold = services.release(hold_id, actor=services.Actor.staff(current_user),
                                reason=form.reason.data, now=now)
    except StockroomError as error:
        # Typically someone else released it first: the message says who and when.
        return _row_response(hold_id, now, message=error.message, level="error",
                             status=error.http_status, row_message=error.message)
    message = f"Released 1 hold: {released_names([hold])}."
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("holds.index"))
    # As after a bulk release: the row leaves the list of active holds (an empty swap).
    response = make_response("", 200)
    return toast(_stock_changed(response), message, "success")


@bp.post("/holds/<id64:hold_id>/extend")
@require("manage_holds")
@applies_once
def extend(hold_id: int):
    now = _now()
    form = ExtendForm()
    if not form.validate():
        return _row_response(hold_id, now, message="Not extended: fix the minutes.",
                             level="error", status=422, row_extend_form=form, open_actions=True)
    row = hold_row(hold_id, now)
    if row is None:
        abort(404, description=f"Hold {hold_id} does not exist.")
    until = row.hold.expires_at + timedelta(minutes=form.minutes.data)
    try:
        services.extend(hold_id, until, actor=services.Actor.staff(current_user), now=now,
                        reason=f"extended by {form.minutes.data} min")
    except StockroomError as error:
        return _row_response(hold_id, now, message=error.message, level="error",
                             status=error.http_status, row_message=error.message,
                             open_actions=True)
    return _row_response(hold_id, now, level="success",
                         message=f"Hold {hold_id} extended by {form.minutes.data} min.")
