"""Transfers (issue 15): the list by status, a new transfer (SKU and quantity rows), and one
transfer's page with its steps: ship, receive (per line, all in transit by default), write
off the rest with a reason, cancel a draft. Reads are in queries/transfers.py, every step
is a service call (services/transfers.py) applied once per submit token."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..models import TRANSFER_STATUSES, Transfer
from ..queries.params import whole_number_or_none
from ..queries.transfers import (
    chosen_status, source_levels, transfer_by_id, transfer_page,
)
from ..services import limits
from ..services.errors import InvalidInput, StockroomError
from ..services.locations import all_locations
from ..services.wording import plural
from .access import require
from .forms import ReasonForm, TransferForm, TransferStepForm, first_error
from .htmx import page, refusal
from .once import applies_once

bp = Blueprint("transfers", __name__)

MORE_ROWS = 10


def _now() -> datetime:
    return datetime.now(timezone.utc)


@bp.get("/transfers")
@login_required
def index():
    status = chosen_status(request.args.get("status"))
    after = whole_number_or_none(request.args.get("after"), max_digits=10)
    return page("transfers/index.html", "transfers/_results.html", chosen=status,
                statuses=TRANSFER_STATUSES, after=after, result=transfer_page(status, after))


# --- a new transfer ------------------------------------------------------------------------

def _with_places(form: TransferForm) -> TransferForm:
    places = all_locations(active_only=True)  # where a transfer may start or end
    choices = [(p.code, f"{p.code} · {p.name}") for p in places]
    form.source.choices = choices
    form.destination.choices = choices
    return form


def _new_page(form: TransferForm, status: int = 200, error: str | None = None):
    return page("transfers/new.html", status=status, form=form, error=error,
                enough_places=len(form.source.choices) > 1)


@bp.get("/transfers/new")
@require("move_stock")
def new():
    """The form, prefilled from ?sku= and ?source= (the product page links here)."""
    form = _with_places(TransferForm(formdata=None))
    codes = [code for code, _ in form.source.choices]
    source = (request.args.get("source") or "").strip().upper()
    form.source.data = source if source in codes else (codes[0] if codes else None)
    form.destination.data = next((c for c in codes if c != form.source.data), None)
    sku = (request.args.get("sku") or "").strip()[:limits.MAX_SKU]
    if sku:
        form.lines.entries[0].form.sku.data = sku
    return _new_page(form)


@bp.post("/transfers/new")
@require("move_stock")
@applies_once
def create():
    form = _with_places(TransferForm())
    if request.form.get("more"):  # more empty rows, what was typed kept; nothing is saved
        for _ in range(MORE_ROWS):
            if len(form.lines.entries) < form.lines.max_entries - 1:
                form.lines.append_entry()
        return _new_page(form)
    if not form.validate_on_submit():
        return refusal("transfers/new.html", f"The transfer was not saved: {form.first_error}",
                       form=form, enough_places=len(form.source.choices) > 1)
    try:
        transfer = services.create_transfer(
            form.source.data, form.destination.data, form.filled_lines, form.note.data,
            actor=services.Actor.staff(current_user), now=_now())
    except StockroomError as error:
        return refusal("transfers/new.html", f"The transfer was not saved: {error.message}",
                       form=form, enough_places=len(form.source.choices) > 1)
    flash(f"{transfer.code} saved as a draft: {plural(len(transfer.lines), 'line')} from"
          f" {form.source.data} to {form.destination.data}. Ship it when the units leave.",
          "success")
    return redirect(url_for("transfers.show", transfer_id=transfer.id))


# --- one transfer and its steps ------------------------------------------------------------

def _transfer_or_404(transfer_id: int) -> Transfer:
    found = transfer_by_id(transfer_id)
    if found is None:
        abort(404, description=f"There is no transfer T-{transfer_id:05d}.")
    return found


def _show_context(transfer: Transfer, **extra) -> dict:
    extra.setdefault("write_off_form", ReasonForm(formdata=None))
    return {"transfer": transfer, "step_form": TransferStepForm(formdata=None),
            "levels": source_levels(transfer) if transfer.status == "draft" else {},
            "received_entered": {}, **extra}


@bp.get("/transfers/<id32:transfer_id>")
@login_required
def show(transfer_id: int):
    return page("transfers/show.html", **_show_context(_transfer_or_404(transfer_id)))


def _refused(transfer_id: int, error, **extra):
    """The transfer's page again, as it is now, with the sentence (nothing was changed)."""
    transfer = _transfer_or_404(transfer_id)
    return refusal("transfers/show.html", error, **_show_context(transfer, **extra))


def _done(transfer: Transfer, message: str):
    flash(message, "success")
    return redirect(url_for("transfers.show", transfer_id=transfer.id))


@bp.post("/transfers/<id32:transfer_id>/ship")
@require("move_stock")
@applies_once
def ship(transfer_id: int):
    transfer = _transfer_or_404(transfer_id)
    if not TransferStepForm().validate_on_submit():
        return _refused(transfer_id, "The form is out of date; reload the page.")
    try:
        shipped = services.transfers.ship(transfer.id, actor=services.Actor.staff(current_user),
                                          now=_now())
    except StockroomError as error:
        return _refused(transfer_id, error)
    units = sum(line.quantity for line in shipped.lines)
    return _done(shipped, f"{shipped.code} shipped: {plural(units, 'unit')} left"
                          f" {shipped.source.code} and are in transit to"
                          f" {shipped.destination.code}.")


def _entered_receipt(transfer: Transfer) -> tuple[dict[int, int], dict[int, str], dict[int, str]]:
    """({product id: units} to receive, {product id: what was typed},
    {product id: why it is wrong}) from the per-line inputs; a blank input is 0."""
    units: dict[int, int] = {}
    typed: dict[int, str] = {}
    wrong: dict[int, str] = {}
    for line in transfer.lines:
        raw = (request.form.get(f"received-{line.product_id}") or "").strip()[:20]
        typed[line.product_id] = raw
        try:
            units[line.product_id] = limits.require_whole_number(
                raw or "0", "quantity", 0, limits.MAX_ADJUST, "units received")
        except InvalidInput as error:
            wrong[line.product_id] = error.message
    return units, typed, wrong


@bp.post("/transfers/<id32:transfer_id>/receive")
@require("move_stock")
@applies_once
def receive(transfer_id: int):
    transfer = _transfer_or_404(transfer_id)
    if not TransferStepForm().validate_on_submit():
        return _refused(transfer_id, "The form is out of date; reload the page.")
    units, typed, wrong = _entered_receipt(transfer)
    if wrong:
        skus = {line.product_id: line.product.sku for line in transfer.lines}
        said = "; ".join(f"{skus[pid]}: {why}" for pid, why in wrong.items())
        return _refused(transfer_id, InvalidInput(f"Nothing was received: {said}"),
                        received_entered=typed, received_errors=wrong)
    try:
        received = services.transfers.receive(
            transfer.id, units, actor=services.Actor.staff(current_user), now=_now())
    except StockroomError as error:
        return _refused(transfer_id, error, received_entered=typed)
    got = sum(units.values())
    left = sum(line.in_transit for line in received.lines)
    message = f"{received.code}: {plural(got, 'unit')} received at {received.destination.code}."
    message += f" {plural(left, 'unit')} still in transit." if left else " Nothing is left in transit."
    return _done(received, message)


@bp.post("/transfers/<id32:transfer_id>/write-off")
@require("move_stock")
@applies_once
def write_off(transfer_id: int):
    transfer = _transfer_or_404(transfer_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _refused(transfer_id, f"Nothing was written off: {first_error(form)}",
                        write_off_form=form)
    before = sum(line.written_off for line in transfer.lines)
    try:
        done = services.transfers.write_off(transfer.id, reason=form.reason.data,
                                            actor=services.Actor.staff(current_user), now=_now())
    except StockroomError as error:
        return _refused(transfer_id, error, write_off_form=form)
    gone = sum(line.written_off for line in done.lines) - before
    return _done(done, f"{done.code}: {plural(gone, 'unit')} written off ({form.reason.data});"
                       f" the transfer is closed.")


@bp.post("/transfers/<id32:transfer_id>/cancel")
@require("move_stock")
@applies_once
def cancel(transfer_id: int):
    transfer = _transfer_or_404(transfer_id)
    if not TransferStepForm().validate_on_submit():
        return _refused(transfer_id, "The form is out of date; reload the page.")
    try:
        cancelled = services.transfers.cancel(
            transfer.id, actor=services.Actor.staff(current_user), now=_now())
    except StockroomError as error:
        return _refused(transfer_id, error)
    return _done(cancelled, f"{cancelled.code} cancelled; no stock moved.")
