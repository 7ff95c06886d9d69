"""Forms of the holds, alerts, jobs and admin pages (Flask-WTF: CSRF on every one)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from ..models import ROLES
from ..services.limits import MAX_REASON
from ..services.staff import MIN_PASSWORD
from .forms import printable


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ReasonForm(FlaskForm):
    """Release one hold, several holds, or repair drift: a reason is always required."""

    reason = StringField(
        "Reason", filters=[_strip],
        validators=[DataRequired("A reason is required."), Length(max=MAX_REASON), printable],
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
        validators=[DataRequired("A note is required."), Length(max=MAX_REASON), printable],
    )


class StaffForm(FlaskForm):
    email = StringField("Email", filters=[_strip],
                        validators=[DataRequired("Enter an email address."), Length(max=254), printable])
    name = StringField("Name", filters=[_strip], validators=[Length(max=100), printable])
    role = SelectField("Role", choices=[SelectChoice(r, r.title()) for r in ROLES], default="viewer")
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter a password."),
                    Length(min=MIN_PASSWORD, max=1024,
                           message=f"Use {MIN_PASSWORD} to 1024 characters.")],
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r, r.title()) for r in ROLES])


class ActiveForm(FlaskForm):
    active = SelectField("Active", choices=[SelectChoice("1", "Active"), SelectChoice("0", "Inactive")])


class PasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a password."),
                    Length(min=MIN_PASSWORD, max=1024,
                           message=f"Use {MIN_PASSWORD} to 1024 characters.")],
    )


class ApiClientForm(FlaskForm):
    name = StringField("Name", filters=[_strip],
                       validators=[DataRequired("Enter a name."), Length(max=100), printable])
