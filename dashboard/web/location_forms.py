"""Forms of the Locations admin page: add a location, change one."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Regexp

from ..models import LOCATION_KINDS
from ..services.locations import CODE
from .forms import printable

MAX_PRIORITY = 10_000  # services.locations._priority's bound


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _code(value):
    return value.strip().upper() if isinstance(value, str) else value


class LocationEditForm(FlaskForm):
    name = StringField("Name", filters=[_strip],
                       validators=[InputRequired("give the location a name"),
                                   Length(max=100, message="keep it to 100 characters"),
                                   printable])
    kind = SelectField("Kind", choices=[SelectChoice(k, k.title()) for k in LOCATION_KINDS])
    sellable = BooleanField("The storefront may hold stock here")
    priority = IntegerField(
        "Priority",
        validators=[InputRequired("enter a priority (lowest is taken first)"),
                    NumberRange(0, MAX_PRIORITY, f"must be between 0 and {MAX_PRIORITY:,}")])


class LocationForm(LocationEditForm):
    code = StringField("Code", filters=[_code],
                       validators=[InputRequired("enter a code, e.g. STORE-2"),
                                   Regexp(f"^{CODE.pattern}$",
                                          message="use 1-20 letters, digits, '-' or '_'")])
