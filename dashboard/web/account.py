"""A staff member's own account: their password and their signed-in devices."""
from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, session, url_for
from flask_login import current_user

from .. import services
from ..services.errors import InvalidInput
from . import login
from .access import require
from .forms import OwnPasswordForm
from .once import applies_once

bp = Blueprint("account", __name__, url_prefix="/account")


def _page(form: OwnPasswordForm, status: int = 200):
    return make_response(render_template("account/index.html", form=form), status)


@bp.get("")
@require("own_account")
def index():
    return _page(OwnPasswordForm(formdata=None))


@bp.post("/password")
@require("own_account")
@applies_once
def change_password():
    form = OwnPasswordForm()
    if not form.validate():
        return _page(form, 422)
    try:
        services.change_own_password(current_user.id, form.current.data, form.password.data,
                                     keep_session=session.get("_user_id"))
    except InvalidInput as refusal:
        for name, message in refusal.fields.items():
            form[name if name in form else "password"].errors = [message]
        return _page(form, 422)
    flash("Password changed; your other devices are signed out.", "success")
    return redirect(url_for("account.index"))


@bp.post("/sign-out-everywhere")
@require("own_account")
def sign_out_everywhere():
    services.end_sessions(current_user.id)
    login.end()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.sign_in"))
