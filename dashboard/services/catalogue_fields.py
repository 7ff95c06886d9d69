"""What a catalogue field may hold: one cleaner per field, shared by the API, the CSV import
and the product form. Each takes what a person or a client sent (text from a file or a
form, or a JSON value) and returns the stored value, or raises FieldError with the sentence.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from . import limits
from .errors import InvalidInput

MAX_SKU = limits.MAX_SKU

MAX_NAME = 200
MAX_CATEGORY = 100
MAX_SUPPLIER = 200
GTIN_LENGTHS = (8, 12, 13, 14)
MAX_PRICE = Decimal("99999999.99")

# The fields a catalogue change may set, in the order files and forms show them.
FIELDS = ("name", "price", "is_active", "barcode", "category", "supplier", "low_stock_threshold")
LABELS = {
    "sku": "SKU", "name": "name", "price": "price", "is_active": "active", "barcode": "barcode",
    "category": "category", "supplier": "supplier", "low_stock_threshold": "threshold",
    "on_hand": "on hand",
}
_TRUE = {"true", "yes", "y", "1", "active", "on", "t", "enabled"}
_FALSE = {"false", "no", "n", "0", "inactive", "off", "f", "disabled"}
# What a spreadsheet makes of a long number: 4.00638E+12 (the digits are gone).
_SCIENTIFIC = re.compile(r"[0-9.,]+[eE]\+?[0-9]+")


class FieldError(ValueError):
    pass


def _text(value, label: str) -> str:
    if not isinstance(value, str):
        raise FieldError(f"{label} must be text")
    if "\x00" in value:
        raise FieldError(f"{label} must not contain a NUL character")
    return value.strip()


def _one_line(text: str) -> str:
    """Line breaks and tabs (a multi-line spreadsheet cell) become single spaces."""
    return " ".join(text.split()) if any(c in text for c in "\r\n\t") else text


def sku(value) -> str:
    """The one SKU rule of the shop (limits.sku_text: printable, no text-direction
    characters, no `.`/`..` segment, at most 100), as a field error."""
    try:
        return limits.sku_text(_text(value, "SKU"))
    except InvalidInput as error:
        raise FieldError(error.message) from None


def name(value) -> str:
    text = _one_line(_text(value, "name"))
    if not text:
        raise FieldError("name is required")
    if len(text) > MAX_NAME:
        raise FieldError(f"name must be at most {MAX_NAME} characters")
    return text


def price(value) -> Decimal:
    if isinstance(value, bool):
        raise FieldError("price must be a number like 12.50")
    text = _decimal_point(value.strip().lstrip("$€£ ")) if isinstance(value, str) else str(value)
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        raise FieldError("price must be a number like 12.50") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        raise FieldError("price must be between 0 and 99,999,999.99")
    if amount != amount.quantize(Decimal("0.01")):
        raise FieldError("price must have at most 2 decimal places")
    return amount.quantize(Decimal("0.01"))


def _decimal_point(text: str) -> str:
    """'1,299.00', '1.299,00' and '12,50' as a decimal point number: the last separator is
    the decimal point when two digits or fewer follow it; the others group thousands."""
    text = text.replace(" ", "").replace("\u00a0", "")
    last = max(text.rfind(","), text.rfind("."))
    if last < 0:
        return text
    whole, fraction = text[:last], text[last + 1:]
    if len(fraction) > 2 and not ("," in whole or "." in whole):
        return whole + fraction if text[last] == "," else text  # '1,299' is 1299
    return whole.replace(",", "").replace(".", "") + "." + fraction


def is_active(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise FieldError("active must be yes or no (true/false, 1/0)")


def whole(value, label: str, high: int) -> int:
    try:
        return limits.require_whole_number(value, label, 0, high, label)
    except InvalidInput as error:
        raise FieldError(error.message) from None


def threshold(value) -> int:
    return whole(value, "threshold", limits.MAX_THRESHOLD)


def on_hand(value) -> int:
    return whole(value, "on hand", limits.MAX_STOCK)


def optional_text(value, label: str, max_length: int) -> str | None:
    """Trimmed text; blank (or null) means none."""
    if value is None:
        return None
    text = _one_line(_text(value, label))
    if len(text) > max_length:
        raise FieldError(f"{label} must be at most {max_length} characters")
    if not text.isprintable():
        raise FieldError(f"{label} must not contain control characters")
    return text or None


def category(value) -> str | None:
    return optional_text(value, "category", MAX_CATEGORY)


def supplier(value) -> str | None:
    return optional_text(value, "supplier", MAX_SUPPLIER)


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it (weights 3, 1, 3, ... from the right)."""
    total = 3 * sum(map(int, body[::-1][::2])) + sum(map(int, body[::-1][1::2]))
    return (10 - total % 10) % 10


def is_gtin(code: str) -> bool:
    return (code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS
            and gtin_check_digit(code[:-1]) == int(code[-1]))


def barcode(value) -> str | None:
    """GTIN-8, UPC-A (12), EAN-13 or GTIN-14 digits with a valid check digit; blank = none."""
    if value is None:
        return None
    text = _text(value, "barcode").replace(" ", "").replace("-", "")
    if not text:
        return None
    if _SCIENTIFIC.fullmatch(text):
        raise FieldError(f"barcode {text} was shortened by a spreadsheet; format the column as"
                         " text and export again")
    if not (text.isascii() and text.isdigit()):
        raise FieldError("barcode must be digits only (GTIN/EAN/UPC)")
    if len(text) not in GTIN_LENGTHS:
        hint = " (a leading 0 lost in a spreadsheet?)" if len(text) in (7, 11) else ""
        raise FieldError(f"barcode must have 8, 12, 13 or 14 digits, not {len(text)}{hint}")
    if not is_gtin(text):
        raise FieldError(f"barcode {text} has a wrong check digit (the last digit should be"
                         f" {gtin_check_digit(text[:-1])})")
    return text


CLEANERS = {
    "name": name, "price": price, "is_active": is_active, "barcode": barcode,
    "category": category, "supplier": supplier, "low_stock_threshold": threshold,
}
