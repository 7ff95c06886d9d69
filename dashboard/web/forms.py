"""Flask-WTF forms of every dashboard page; CSRF is checked on each (form field or the
X-CSRFToken header htmx sends).

A view validates its form before it calls a service, so bad input never reaches one; a
field error renders next to its field (templates/_field.html, or the row's own markup).
A service's refusal (a StockroomError) is then shown the way the page shows answers: on the
row (`row_answer` in web/htmx.py) or the re-rendered page (`refusal`). Nothing is changed
on refusal.
"""
from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from ..models import ROLES
from ..services import limits
from ..services.errors import InvalidInput
from ..services.staff import EMAIL, MIN_PASSWORD
from ..services.transfers import MAX_LINES

# Control characters (NUL above all: PostgreSQL text cannot hold it) are never typed by a person.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def printable(form, field):
    if field.data and _CONTROL.search(field.data):
        raise ValidationError("must not contain control characters")


def at_most_reason_length(form, field):
    """A reason or note over the limit is refused with its length (never cut silently)."""
    if field.data and len(field.data) > limits.MAX_REASON:
        raise ValidationError(f"is {len(field.data):,} characters long; keep it to "
                              f"{limits.MAX_REASON:,} (nothing was saved)")


def not_zero(form, field):
    if field.data == 0:
        raise ValidationError("must not be 0: use a positive number to add, negative to remove")


def first_error(form: FlaskForm) -> str:
    """The first field error as one sentence for a toast ('Delta: must not be 0')."""
    for field in form:
        if field.errors:
            return f"{field.label.text}: {field.errors[0]}"
    return "Please check the form."


def _new_password(label: str):
    return PasswordField(
        label,
        validators=[DataRequired("Enter a password."),
                    Length(min=MIN_PASSWORD, max=1024,
                           message=f"Use {MIN_PASSWORD} to 1024 characters.")],
    )


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(role, role.title()) for role in ROLES]


class SignInForm(FlaskForm):
    email = StringField(
        "Email",
        filters=[_strip],
        validators=[InputRequired("enter your email address"), Length(max=254), printable,
                    Regexp(EMAIL, message="enter a valid email address")],
    )
    password = PasswordField(
        "Password", validators=[InputRequired("enter your password"), Length(max=1024), printable]
    )
    remember = BooleanField("Keep me signed in on this device")
    next = HiddenField()
    resume = HiddenField()  # "1": put back what was typed when the session ended


class OwnPasswordForm(FlaskForm):
    current = PasswordField(
        "Current password",
        validators=[InputRequired("enter your current password"), Length(max=1024), printable],
    )
    password = _new_password("New password")


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
                    at_most_reason_length, printable],
    )
    # The location's code; none: the default location (as before locations existed).
    location = StringField("Location", validators=[Optional(), Length(max=20), printable])


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
    note = StringField("Note", validators=[Optional(), at_most_reason_length, printable])
    location = StringField("Location", validators=[Optional(), Length(max=20), printable])


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("choose a CSV file to check")])


class ApplyImportForm(FlaskForm):
    # The checked file travels back with the confirmation, so what is applied is what was shown.
    csv_text = TextAreaField(validators=[InputRequired("the checked file is missing; upload it again"),
                                         Length(max=2_000_000), printable])
    # The on-hand each row showed ("-" where the row had no product): apply refuses rows
    # whose on-hand has moved since, as a single count does.
    on_hand_seen = HiddenField(validators=[InputRequired("the checked figures are missing; check the file again"),
                                           Regexp(r"^(\d+|-)( (\d+|-))*$", message="the checked figures are damaged; check the file again")])

    @property
    def seen(self) -> list[int | None]:
        return [None if cell == "-" else int(cell) for cell in self.on_hand_seen.data.split(" ")]

    @staticmethod
    def encode_seen(on_hand_seen: list[int | None]) -> str:
        return " ".join("-" if value is None else str(value) for value in on_hand_seen)


class ProductSettingsForm(FlaskForm):
    threshold = IntegerField(
        "Low-stock threshold",
        validators=[InputRequired("enter a threshold (0 turns low-stock alerts off)"),
                    NumberRange(0, limits.MAX_THRESHOLD, f"must be between 0 and {limits.MAX_THRESHOLD:,}")],
    )
    is_active = BooleanField("Active (can be sold and reserved)")


class ReasonForm(FlaskForm):
    """Release one hold, several holds, or repair drift: a reason is always required."""

    reason = StringField(
        "Reason", filters=[_strip],
        validators=[DataRequired("A reason is required."), at_most_reason_length, printable],
    )


class ExtendForm(FlaskForm):
    minutes = IntegerField(
        "Extend by (minutes)",
        validators=[InputRequired("Enter the number of minutes."),
                    NumberRange(min=1, max=24 * 60, message="Enter 1 to 1440 minutes.")],
    )


class ResolveForm(FlaskForm):
    note = StringField(
        "Resolution note", filters=[_strip],
        validators=[DataRequired("A note is required."), at_most_reason_length, printable],
    )


class StaffForm(FlaskForm):
    email = StringField("Email", filters=[_strip],
                        validators=[DataRequired("Enter an email address."), Length(max=254), printable])
    name = StringField("Name", filters=[_strip], validators=[Length(max=100), printable])
    role = SelectField("Role", choices=_role_choices(), default="viewer")
    password = _new_password("Password")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=_role_choices())


class ActiveForm(FlaskForm):
    active = SelectField("Active", choices=[SelectChoice("1", "Active"), SelectChoice("0", "Inactive")])


class StorefrontsForm(FlaskForm):
    all_storefronts = SelectField("Reach", choices=[SelectChoice("1", "Every storefront"),
                                                   SelectChoice("0", "Its own records")])


class PasswordForm(FlaskForm):
    password = _new_password("New password")


class ApiClientForm(FlaskForm):
    name = StringField("Name", filters=[_strip],
                       validators=[DataRequired("Enter a name."), Length(max=100), printable])
    all_storefronts = BooleanField("May act on every storefront's carts, orders and holds")


class TransferLineForm(Form):
    """One row of a new transfer: a SKU and how many units. A blank row is left out."""

    sku = StringField("SKU", filters=[_strip], validators=[
        Length(max=limits.MAX_SKU, message=f"a SKU is at most {limits.MAX_SKU} characters"),
        printable])
    quantity = StringField("Quantity", filters=[_strip], validators=[
        Length(max=20, message=f"quantity must be a whole number up to {limits.MAX_ADJUST:,}")])

    @property
    def blank(self) -> bool:
        return not self.sku.data and not self.quantity.data

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid or self.blank:
            return valid
        if not self.sku.data:
            self.sku.errors.append("enter the SKU of these units")
            return False
        try:
            self.quantity.data = limits.require_whole_number(
                self.quantity.data, "quantity", 1, limits.MAX_ADJUST)
        except InvalidInput as error:
            self.quantity.errors.append(error.message)
            return False
        return True


class TransferForm(FlaskForm):
    lines_error: str | None = None
    source = SelectField("From", choices=[])
    destination = SelectField("To", choices=[])
    note = StringField("Note", filters=[_strip],
                       validators=[Optional(), at_most_reason_length, printable])
    # One more than allowed, so a longer list is refused with a sentence rather than cut.
    lines = FieldList(FormField(TransferLineForm), min_entries=10, max_entries=MAX_LINES + 1)

    def validate_destination(self, field):
        if field.data and field.data == self.source.data:
            raise ValidationError("choose a different location from the source")

    def validate(self, extra_validators=None) -> bool:
        """The fields, then the lines as a whole: `lines_error` says what is wrong with them."""
        valid = super().validate(extra_validators)
        filled = [entry for entry in self.lines.entries if not entry.form.blank]
        self.lines_error = None
        if len(self.lines.entries) > MAX_LINES:
            self.lines_error = f"a transfer has at most {MAX_LINES} lines; split it"
        elif not filled:
            self.lines_error = "enter at least one SKU and quantity"
        return valid and self.lines_error is None

    @property
    def first_error(self) -> str:
        for field in (self.source, self.destination, self.note):
            if field.errors:
                return f"{field.label.text}: {field.errors[0]}"
        for number, entry in enumerate(self.lines.entries, start=1):
            for field in (entry.form.sku, entry.form.quantity):
                if field.errors:  # "must ..." needs its field's name; the rest name it
                    error = field.errors[0]
                    said = f"{field.label.text} {error}" if error.startswith("must") else error
                    return f"line {number}: {said}"
        return f"{self.lines_error}" if self.lines_error else first_error(self)

    @property
    def filled_lines(self) -> list[tuple[str, int]]:
        return [(entry.form.sku.data, entry.form.quantity.data)
                for entry in self.lines.entries if not entry.form.blank]


class TransferStepForm(FlaskForm):
    """Ship, cancel or receive a transfer: the CSRF token (receipts' figures are per line)."""
