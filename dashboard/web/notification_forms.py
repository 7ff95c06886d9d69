"""Forms of the notification pages (your settings; the admin's webhooks)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..models import WEBHOOK_EVENTS
from .forms import printable

MODES = [SelectChoice("off", "No mails"),
         SelectChoice("immediate", "A mail as each alert happens"),
         SelectChoice("digest", "One digest a day")]


def choices(values) -> list[SelectChoice]:
    return [SelectChoice(value, value) for value in values]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SubscriptionForm(FlaskForm):
    mode = RadioField("Mails", choices=MODES, validators=[DataRequired("Choose how to be told.")])
    everything = BooleanField("All products, in every category")
    categories = Checkboxes("Only these categories", choices=[], validate_choice=False)


class EndpointForm(FlaskForm):
    url = StringField("URL", filters=[_strip],
                      validators=[DataRequired("Enter the address to send to."),
                                  Length(max=2000), printable])
    events = Checkboxes("Events", choices=choices(WEBHOOK_EVENTS),
                        validators=[DataRequired("Choose at least one event.")])
    secret = StringField("Secret (leave empty to have one made)", filters=[_strip],
                         validators=[Optional(), Length(min=16, max=200), printable])
