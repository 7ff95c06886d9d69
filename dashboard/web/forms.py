"""Flask-WTF forms for sign-in, stock corrections, CSV import and product settings.

The pattern every dashboard view follows (other modules: please do the same):

    form = AdjustForm()                       # CSRF checked here (form field or X-CSRFToken)
    if not form.validate_on_submit():         # bad input never reaches a service
        return refusal("stock/_row.html", first_error(form), product=p, adjust_form=form)
    try:
        services.adjust(...)                  # one transaction; refusals are StockroomError
    except StockroomError as error:           # e.g. BelowHeld, StaleCount
        return refusal("stock/_row.html", error, product=fresh, adjust_form=form)
    return toast(page(...fragment...), "Done: ...", "success")

`refusal` (dashboard/web/htmx.py) re-renders the same fragment with `error` shown in place,
answers 409/422 (base.html's htmx-config swaps those, so the error lands where the user
looked) and adds an error toast. Field errors render from `form.<field>.errors` next to the
field with aria-invalid; see templates/_field_errors.html. Nothing is changed on refusal.
"""
from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, PasswordField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from ..services import limits

# Control characters (NUL above all: PostgreSQL text cannot hold it) are never typed by a person.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def printable(form, field):
    if field.data and _CONTROL.search(field.data):
        raise ValidationError("must not contain control characters")


def not_zero(form, field):
    if field.data == 0:
        raise ValidationError("must not be 0: use a positive number to add, negative to remove")


def first_error(form: FlaskForm) -> str:
    """The first field error as one sentence for a toast ('Delta: must not be 0')."""
    for field in form:
        if field.errors:
            return f"{field.label.text}: {field.errors[0]}"
    return "Please check the form."


class SignInForm(FlaskForm):
    email = StringField(
        "Email",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[InputRequired("enter your email address"), Length(max=254), printable,
                    Regexp(EMAIL, message="enter a valid email address")],
    )
    password = PasswordField(
        "Password", validators=[InputRequired("enter your password"), Length(max=1024), printable]
    )
    remember = BooleanField("Keep me signed in on this device")
    next = HiddenField()


class AdjustForm(FlaskForm):
    delta = IntegerField(
        "Change",
        validators=[
            InputRequired("enter how many units to add (or remove, with a minus sign)"),
            NumberRange(-limits.MAX_ADJUST, limits.MAX_ADJUST,
                        f"must be between -{limits.MAX_ADJUST:,} and {limits.MAX_ADJUST:,}"),
            not_zero,
        ],
    )
    reason = StringField(
        "Reason",
        validators=[InputRequired("say why (e.g. damaged in the warehouse)"),
                    Length(max=limits.MAX_REASON), printable],
    )


class CountForm(FlaskForm):
    counted = IntegerField(
        "Counted",
        validators=[InputRequired("enter the number of units you counted"),
                    NumberRange(0, limits.MAX_STOCK, f"must be between 0 and {limits.MAX_STOCK:,}")],
    )
    # The on-hand figure the counter was looking at; the service refuses if it has moved.
    expected = IntegerField(
        "On hand when loaded",
        validators=[InputRequired("the page is missing the figure you saw; reload it"),
                    NumberRange(0, limits.MAX_STOCK, "is not a valid stock figure; reload the page")],
    )
    note = StringField("Note", validators=[Optional(), Length(max=limits.MAX_REASON), printable])


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("choose a CSV file to check")])


class ApplyImportForm(FlaskForm):
    # The checked file travels back with the confirmation, so what is applied is what was shown.
    csv_text = TextAreaField(validators=[InputRequired("the checked file is missing; upload it again"),
                                         Length(max=2_000_000), printable])


class ProductSettingsForm(FlaskForm):
    threshold = IntegerField(
        "Low-stock threshold",
        validators=[InputRequired("enter a threshold (0 turns low-stock alerts off)"),
                    NumberRange(0, limits.MAX_THRESHOLD, f"must be between 0 and {limits.MAX_THRESHOLD:,}")],
    )
    is_active = BooleanField("Active (can be sold and reserved)")
