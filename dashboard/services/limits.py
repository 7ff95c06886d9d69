"""Bounds on what a person or a client may ask for, checked before any SQL runs."""
from __future__ import annotations

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


def whole_number(value, field: str, low: int, high: int, label: str | None = None) -> int:
    """An int in [low, high]; bools, floats and text are refused with a sentence, not a crash."""
    label = label or field.replace("_", " ")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            value = int(value.strip())
        else:
            raise InvalidInput(f"{label} must be a whole number", field=field)
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
    return text or None


def ttl_seconds(value) -> int:
    config = current_app.config
    if value is None:
        return config["HOLD_TTL_DEFAULT"]
    return whole_number(
        value, "ttl_seconds", config["HOLD_TTL_MIN"], config["HOLD_TTL_MAX"], "ttl_seconds"
    )
