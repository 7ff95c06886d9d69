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


def ttl_seconds(value) -> int:
    config = current_app.config
    if value is None:
        return config["HOLD_TTL_DEFAULT"]
    return require_whole_number(
        value, "ttl_seconds", config["HOLD_TTL_MIN"], config["HOLD_TTL_MAX"], "ttl_seconds"
    )
