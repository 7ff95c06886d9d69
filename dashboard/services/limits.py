"""Bounds on what a person or a client may ask for, checked before any SQL runs."""
from __future__ import annotations

import re

from flask import current_app

from .errors import InvalidInput

# Counters are 32-bit integers in the database; stay well inside them so sums never overflow.
MAX_STOCK = 1_000_000_000
MAX_HOLD_QUANTITY = 10_000
MAX_ADJUST = 1_000_000
MAX_THRESHOLD = 1_000_000
MAX_REASON = 500
MAX_SESSION_KEY = 40
MAX_CUSTOMER_ID = 2**63 - 1
# Ids are integer (products, carts, orders, alerts) or bigint (holds) columns.
MAX_ID = 2**31 - 1
MAX_HOLD_ID = 2**63 - 1

# NUL (PostgreSQL text cannot hold it) and lone surrogates (no encoding can).
_UNSAYABLE = re.compile("[\x00\ud800-\udfff]")

# ASCII digits only: str.isdigit() also accepts '²' and '٣', which int() or the database refuse.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def require_whole_number(value, field: str, low: int, high: int,
                         label: str | None = None) -> int:
    """An int in [low, high], or InvalidInput: bools, floats and text are refused with a
    sentence, not a crash."""
    label = label or field.replace("_", " ")
    if isinstance(value, bool) or not isinstance(value, int):
        text = value.strip() if isinstance(value, str) else ""
        if not _WHOLE_NUMBER.fullmatch(text):
            raise InvalidInput(f"{label} must be a whole number", field=field)
        # Python's int() refuses strings over 4300 digits; any number that long is out of range.
        value = int(text) if len(text) <= 100 else (low - 1 if text[0] == "-" else high + 1)
    if value < low:
        raise InvalidInput(f"{label} must be at least {low:,}", field=field)
    if value > high:
        raise InvalidInput(f"{label} must be at most {high:,}", field=field)
    return value


def reason_text(value, field: str = "reason", required: bool = True) -> str | None:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise InvalidInput(f"{field} must be text", field=field)
    if required and not text:
        raise InvalidInput(f"a {field} is required", field=field)
    if len(text) > MAX_REASON:
        raise InvalidInput(f"{field} must be at most {MAX_REASON} characters", field=field)
    no_nul(text, field)
    return text or None


def no_nul(text: str, field: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it here rather than as a DataError."""
    if "\x00" in text:
        raise InvalidInput(f"{field} must not contain a NUL character", field=field)
    return text


MAX_SKU = 100
# Bidirectional embeddings and isolates: they reorder how the text around them is shown.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def sku_text(value) -> str:
    """A new product's SKU, or InvalidInput. The rule: 1 to 100 printable characters (no
    control, format or bidi characters such as U+202A-202E and U+2066-2069), no space at
    either end (trimmed), and no `.` or `..` path segment, so the SKU shows as it is and its
    page address (where it is one path, escaped) can never mean another page."""
    sku = value.strip() if isinstance(value, str) else ""
    if not sku or len(sku) > MAX_SKU:
        raise InvalidInput(f"SKU must be 1 to {MAX_SKU} characters", field="sku")
    if _BIDI_CONTROLS.search(sku) or not sku.isprintable():
        raise InvalidInput("SKU must be printable characters (no control, format or"
                           " text-direction characters)", field="sku")
    if any(part in (".", "..") for part in sku.split("/")):
        raise InvalidInput("SKU must not have a '.' or '..' segment between slashes",
                           field="sku")
    return sku


def ttl_limit() -> int:
    """The longest time to live a new hold may get: HOLD_TTL_MAX, and never past the
    HOLD_EXTEND_CAP that bounds every hold's life from its creation."""
    config = current_app.config
    return min(config["HOLD_TTL_MAX"], config["HOLD_EXTEND_CAP"])


def ttl_seconds(value) -> int:
    config = current_app.config
    if value is None:
        return min(config["HOLD_TTL_DEFAULT"], ttl_limit())
    ttl = require_whole_number(value, "ttl_seconds", config["HOLD_TTL_MIN"],
                               config["HOLD_TTL_MAX"], "ttl_seconds")
    if ttl > config["HOLD_EXTEND_CAP"]:
        raise InvalidInput(
            f"ttl_seconds must be at most {config['HOLD_EXTEND_CAP']}: a hold never lasts"
            " longer than the extension cap after it is made", field="ttl_seconds",
            cap_seconds=config["HOLD_EXTEND_CAP"])
    return ttl


def unsayable(text: str) -> bool:
    """Whether `text` holds a character no one types and no database column can store."""
    return bool(_UNSAYABLE.search(text))
