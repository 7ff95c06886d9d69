"""Staff and API clients (SPEC §5, §6): admins only, pages included (they list credentials)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user

from .. import services
from ..models import ROLES
from ..queries.admin import api_client_list, staff_list, staff_member
from ..services.errors import StockroomError
from .access import require
from .forms import ActiveForm, ApiClientForm, PasswordForm, RoleForm, StaffForm, StorefrontsForm
from .htmx import is_htmx, page, row_answer, toast
from .once import applies_once

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _staff_page(status: int = 200, **context):
    context.setdefault("form", StaffForm(formdata=None))
    return page("admin/staff.html", "admin/_staff.html", status=status,
                staff=staff_list(), roles=ROLES, **context)


@bp.get("/staff")
@require("manage_staff")
def staff():
    return _staff_page()


def _apply_field_errors(form, error: StockroomError) -> None:
    # A refusal without a field (an email already taken) belongs to the email.
    for name, message in (getattr(error, "fields", None) or {"email": error.message}).items():
        form[name if name in form else "email"].errors = [message]


@bp.post("/staff")
@require("manage_staff")
@applies_once
def create_staff():
    form = StaffForm()
    if form.validate():
        try:
            user = services.create_staff(form.email.data, role=form.role.data,
                                         password=form.password.data,
                                         name=form.name.data or None, now=_now())
        except StockroomError as error:
            _apply_field_errors(form, error)
        else:
            message = f"Created {user.email} ({user.role}). Give them their password in person."
            if not is_htmx():
                flash(message, "success")
                return redirect(url_for("admin.staff"))
            return toast(_staff_page(created_id=user.id), message, "success")
    response = _staff_page(status=422, form=form)
    return toast(response, "Not created: fix the highlighted fields.", "error")


def _staff_row(staff_id: int, *, message: str, level: str, status: int = 200, **context):
    user = staff_member(staff_id)
    if user is None:
        abort(404, description=f"Staff member {staff_id} does not exist.")
    return row_answer(
        "admin/_staff_row.html", "admin/staff.html", back_to=url_for("admin.staff"),
        message=message, level=level, status=status,
        alone_context={"staff": [user], "form": StaffForm(formdata=None), "row_message": message},
        user=user, roles=ROLES, row_message=message if status >= 400 else None, **context,
    )


def _refuse_self(staff_id: int, what: str):
    if staff_id == current_user.id:
        return _staff_row(staff_id, status=409, level="error",
                          message=f"You cannot {what} your own account; ask another admin.")
    return None


@bp.post("/staff/<id32:staff_id>/role")
@require("manage_staff")
@applies_once
def set_role(staff_id: int):
    form = RoleForm()
    if not form.validate():
        return _staff_row(staff_id, status=422, level="error", message="Choose a role from the list.")
    refused = _refuse_self(staff_id, "change the role of")
    if refused:
        return refused
    user = services.set_role(staff_id, form.role.data)
    return _staff_row(staff_id, level="success",
                      message=f"{user.email} is now {user.role}; they sign in again.")


@bp.post("/staff/<id32:staff_id>/active")
@require("manage_staff")
@applies_once
def set_active(staff_id: int):
    form = ActiveForm()
    if not form.validate():
        return _staff_row(staff_id, status=422, level="error", message="Choose active or inactive.")
    active = form.active.data == "1"
    refused = None if active else _refuse_self(staff_id, "deactivate")
    if refused:
        return refused
    user = services.set_staff_active(staff_id, active)
    state = "reactivated" if active else "deactivated and signed out"
    return _staff_row(staff_id, level="success", message=f"{user.email} {state}.")


@bp.post("/staff/<id32:staff_id>/password")
@require("manage_staff")
@applies_once
def reset_password(staff_id: int):
    form = PasswordForm()
    if not form.validate():
        return _staff_row(staff_id, status=422, level="error",
                          message="Password not reset: " + form.password.errors[0],
                          password_form=form)
    refused = _refuse_self(staff_id, "reset the password of")
    if refused:
        return refused
    user = services.reset_password(staff_id, form.password.data)
    return _staff_row(staff_id, level="success",
                      message=f"Password of {user.email} reset; their sessions are signed out.")


@bp.post("/staff/<id32:staff_id>/sessions")
@require("manage_staff")
def end_sessions(staff_id: int):
    user = staff_member(staff_id)
    if user is None:
        abort(404, description=f"Staff member {staff_id} does not exist.")
    ended = services.end_sessions(staff_id)
    return _staff_row(staff_id, level="success",
                      message=f"{user.email} is signed out on {ended} device{'s' if ended != 1 else ''}.")


def _clients_page(status: int = 200, **context):
    context.setdefault("form", ApiClientForm(formdata=None))
    return page("admin/api_clients.html", "admin/_api_clients.html", status=status,
                clients=api_client_list(), **context)


@bp.get("/api-clients")
@require("manage_staff")
def api_clients():
    return _clients_page()


@bp.post("/api-clients")
@require("manage_staff")
@applies_once
def create_api_client():
    form = ApiClientForm()
    if form.validate():
        try:
            client, token = services.create_api_client(
                form.name.data, now=_now(), all_storefronts=form.all_storefronts.data)
        except StockroomError as error:
            form.name.errors = [error.message]
        else:
            # The token exists only in this response: never stored, never shown again.
            response = _clients_page(new_client=client, new_token=token)
            return toast(response, f"API client {client.name} created; copy its token now.",
                         "success")
    return toast(_clients_page(status=422, form=form), "Not created: " + form.name.errors[0],
                 "error")


@bp.post("/api-clients/<id32:client_id>/active")
@require("manage_staff")
@applies_once
def set_api_client_active(client_id: int):
    form = ActiveForm()
    if not form.validate():
        return toast(_clients_page(status=422), "Choose active or inactive.", "error")
    try:
        client = services.set_api_client_active(client_id, form.active.data == "1")
    except StockroomError as error:
        abort(404, description=error.message)
    state = "can use the API again" if client.is_active else "is switched off: its token no longer works"
    message = f"API client {client.name} {state}."
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("admin.api_clients"))
    return toast(_clients_page(), message, "success")


@bp.post("/api-clients/<id32:client_id>/storefronts")
@require("manage_staff")
@applies_once
def set_api_client_storefronts(client_id: int):
    form = StorefrontsForm()
    if not form.validate():
        return toast(_clients_page(status=422), "Choose every storefront or its own.", "error")
    try:
        client = services.set_api_client_storefronts(client_id, form.all_storefronts.data == "1")
    except StockroomError as error:
        abort(404, description=error.message)
    reach = ("may act on every storefront's records" if client.all_storefronts
             else "reaches only its own records")
    message = f"API client {client.name} {reach}."
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("admin.api_clients"))
    return toast(_clients_page(), message, "success")
