"""Locations admin (issue 15): the warehouses and stores, their totals, and adding, changing,
closing, reopening one or making it the default. Admins only; every change goes through
services.locations, whose refusals are shown beside the form or in the list."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user

from .. import services
from ..queries.location_totals import location_named, location_totals
from ..services.errors import StockroomError
from ..services.locations import create_location, update_location
from .access import require
from .forms import ActiveForm
from .htmx import is_htmx, page, refused, toast
from .location_forms import LocationEditForm, LocationForm
from .once import applies_once

bp = Blueprint("locations", __name__, url_prefix="/admin/locations")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _actor():
    return services.Actor.staff(current_user)


def _list_page(status: int = 200, **context):
    context.setdefault("form", LocationForm(formdata=None, sellable=True, priority=100))
    return page("locations/index.html", "locations/_section.html", status=status,
                locations=location_totals(), **context)


def _done(message: str):
    """A change applied: the list again (htmx) with a toast, or back to it (a plain post)."""
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("locations.index"))
    return toast(_list_page(), message, "success")


def _field_errors(form, error: StockroomError) -> None:
    # A refusal without a field (a code already taken) belongs to the code, or the name.
    fallback = "code" if "code" in form else "name"
    for name, message in (getattr(error, "fields", None) or {fallback: error.message}).items():
        form[name if name in form else fallback].errors = [message]


@bp.get("")
@require("manage_locations")
def index():
    return _list_page()


@bp.post("")
@require("manage_locations")
@applies_once
def create():
    form = LocationForm()
    if form.validate():
        try:
            location = create_location(form.code.data, form.name.data, kind=form.kind.data,
                                       sellable=form.sellable.data, priority=form.priority.data,
                                       actor=_actor(), now=_now())
        except StockroomError as error:
            _field_errors(form, error)
        else:
            return _done(f"Location {location.code} ({location.name}) added, with no stock yet.")
    return toast(_list_page(status=422, form=form), "Not added: fix the highlighted fields.",
                 "error")


def _found(location_id: int):
    location = location_named(location_id)
    if location is None:
        abort(404, description=f"Location {location_id} does not exist.")
    return location


def _edit_page(location, form, status: int = 200):
    return page("locations/edit.html", status=status, location=location, form=form)


@bp.get("/<id32:location_id>/edit")
@require("manage_locations")
def edit(location_id: int):
    location = _found(location_id)
    return _edit_page(location, LocationEditForm(obj=location))


@bp.post("/<id32:location_id>/edit")
@require("manage_locations")
@applies_once
def save(location_id: int):
    location = _found(location_id)
    form = LocationEditForm()
    if form.validate():
        try:
            changed = update_location(location.id, name=form.name.data, kind=form.kind.data,
                                      sellable=form.sellable.data,
                                      priority=form.priority.data, actor=_actor(), now=_now())
        except StockroomError as error:
            _field_errors(form, error)
        else:
            flash(f"Location {changed.code} saved.", "success")
            return redirect(url_for("locations.index"))
    return _edit_page(location, form, status=422)


def _refused(error: StockroomError | str, status: int | None = None):
    """A refused close, reopen or make-default: the list with the reason above it."""
    message, status = refused(error, status)
    return toast(_list_page(status=status, error=message), message, "error")


@bp.post("/<id32:location_id>/active")
@require("manage_locations")
@applies_once
def set_active(location_id: int):
    location = _found(location_id)
    form = ActiveForm()
    if not form.validate():
        return _refused("Choose open or closed.", 422)
    try:
        changed = update_location(location.id, is_active=form.active.data == "1",
                                  actor=_actor(), now=_now())
    except StockroomError as error:
        return _refused(error)
    state = ("is open again; it takes holds if it sells" if changed.is_active
             else "is closed: it takes no stock or holds")
    return _done(f"Location {changed.code} {state}.")


@bp.post("/<id32:location_id>/default")
@require("manage_locations")
@applies_once
def make_default(location_id: int):
    location = _found(location_id)
    try:
        changed = update_location(location.id, make_default=True, actor=_actor(), now=_now())
    except StockroomError as error:
        return _refused(error)
    return _done(f"{changed.code} is now the default location: counts, adjustments and"
                 " imports that name no location happen there.")
