"""Forms of the catalogue pages: the product form, deactivation, the product import.

Field rules are the catalogue service's (services/catalogue_fields.py), so a form and a
file and the API refuse the same values with the same sentences; the form checks only
what the browser sends (presence, length, control characters).
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from ..services import catalogue_fields as fields
from ..services import limits
from .forms import _strip, printable


def _catalogue_rule(cleaner):
    """A WTForms validator from a catalogue field cleaner."""
    def check(form, field):
        try:
            cleaner(field.data if field.data is not None else "")
        except fields.FieldError as error:
            raise ValidationError(str(error)) from None
    return check


class ProductForm(FlaskForm):
    sku = StringField("SKU", filters=[_strip],
                      validators=[InputRequired("enter the SKU"), Length(max=fields.MAX_SKU),
                                  printable])
    name = StringField("Name", filters=[_strip],
                       validators=[InputRequired("enter the product's name"),
                                   Length(max=fields.MAX_NAME), printable])
    price = StringField("Price", filters=[_strip], default="0.00",
                        validators=[InputRequired("enter a price (0 for none)"),
                                    _catalogue_rule(fields.price)])
    barcode = StringField("Barcode (EAN/UPC/GTIN)", filters=[_strip],
                          validators=[Optional(), _catalogue_rule(fields.barcode)])
    category = StringField("Category", filters=[_strip],
                           validators=[Length(max=fields.MAX_CATEGORY), printable])
    supplier = StringField("Supplier", filters=[_strip],
                           validators=[Length(max=fields.MAX_SUPPLIER), printable])
    low_stock_threshold = IntegerField(
        "Low-stock threshold", default=10,
        validators=[InputRequired("enter a threshold (0 turns low-stock alerts off)"),
                    NumberRange(0, limits.MAX_THRESHOLD,
                                f"must be between 0 and {limits.MAX_THRESHOLD:,}")])
    is_active = BooleanField("Active (can be sold and reserved)", default=True)
    # Only when creating: the units on the shelf now, written as a receive.
    on_hand = IntegerField("Opening stock", default=0,
                           validators=[Optional(), NumberRange(0, limits.MAX_STOCK,
                                       f"must be between 0 and {limits.MAX_STOCK:,}")])

    def catalogue_values(self) -> dict:
        return {name: getattr(self, name).data for name in fields.FIELDS}


class DeactivateForm(FlaskForm):
    confirm = HiddenField(default="yes")


class ProductImportForm(FlaskForm):
    # The apply form sends this input's file again (hx-include="#products-file").
    file = FileField("Product CSV file", id="products-file",
                     validators=[FileRequired("choose a CSV file to check")])


class ApplyProductImportForm(FlaskForm):
    # The file travels again with the apply (htmx includes the check form's file input);
    # its digest proves it is the file whose check the staff member saw.
    digest = HiddenField(validators=[InputRequired("the check is missing; check the file again"),
                                     Length(min=64, max=64)])
