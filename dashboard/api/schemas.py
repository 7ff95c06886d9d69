"""Request bodies: each is defined once and both validated and published from that definition.

The OpenAPI document (`openapi.py`) is generated from these same objects, so the bounds a
storefront reads are the bounds the API enforces. Validation is strict JSON typing: "5" is
not an integer, true is not an integer, 2.5 is not an integer (2.0 is, as in JSON Schema).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from flask import current_app

from ..services import limits
from .errors import invalid

MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1
# Text with at least one non-space character and no NUL (PostgreSQL text cannot hold NUL).
_NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
_NO_NUL = r"^[^\u0000]*$"


class FieldError(ValueError):
    pass


@dataclass(frozen=True)
class Integer:
    """A whole number in [low, high]; a bound given as text is read from the app config, one
    given as a function is computed when asked."""

    low: int | str
    high: int | str | Callable[[], int]
    description: str
    example: int | None = None

    def bounds(self) -> tuple[int, int]:
        def resolve(bound):
            if callable(bound):
                return bound()
            return current_app.config[bound] if isinstance(bound, str) else bound

        return resolve(self.low), resolve(self.high)

    def clean(self, value) -> int:
        if isinstance(value, Decimal):  # JSON numbers with a fraction or exponent
            if not value.is_finite() or value != value.to_integral_value():
                raise FieldError("must be a whole number")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise FieldError("must be a whole number")
        low, high = self.bounds()
        if value < low:
            raise FieldError(f"must be at least {low}")
        if value > high:
            raise FieldError(f"must be at most {high}")
        return int(value)  # only now: int() of 1e999999999 would be enormous

    def schema(self) -> dict:
        low, high = self.bounds()
        schema = {"type": "integer", "minimum": low, "maximum": high,
                  "description": self.description}
        if self.example is not None:
            schema["example"] = self.example
        return schema


@dataclass(frozen=True)
class Text:
    max_length: int
    description: str
    blank_allowed: bool = False
    example: str | None = None

    def clean(self, value) -> str:
        if not isinstance(value, str):
            raise FieldError("must be text")
        if "\x00" in value:
            raise FieldError("must not contain NUL characters")
        if not self.blank_allowed and not value.strip():
            raise FieldError("must not be blank")
        if len(value) > self.max_length:
            raise FieldError(f"must be at most {self.max_length} characters")
        return value

    def schema(self) -> dict:
        schema = {"type": "string", "maxLength": self.max_length,
                  "pattern": _NO_NUL if self.blank_allowed else _NOT_BLANK,
                  "description": self.description}
        if not self.blank_allowed:
            schema["minLength"] = 1
        if self.example is not None:
            schema["example"] = self.example
        return schema


@dataclass(frozen=True)
class Body:
    """A JSON object with known fields; unknown fields are refused."""

    name: str
    description: str
    fields: dict[str, Integer | Text]
    required: tuple[str, ...] = ()
    # At least one of these must be present.
    one_of: tuple[str, ...] = ()
    example: dict = field(default_factory=dict)

    def clean(self, data) -> dict:
        if not isinstance(data, dict):
            raise invalid({"body": "must be a JSON object"})
        errors: dict[str, str] = {}
        values = {}
        for name, value in data.items():
            spec = self.fields.get(name)
            if spec is None:
                errors[name] = "unknown field"
                continue
            try:
                values[name] = spec.clean(value)
            except FieldError as error:
                errors[name] = str(error)
        for name in self.required:
            if name not in data:
                errors[name] = "is required"
        if self.one_of and not any(name in data for name in self.one_of):
            errors["owner"] = f"give at least one of {', '.join(self.one_of)}"
        if errors:
            raise invalid(errors)
        return values

    def schema(self) -> dict:
        schema = {
            "type": "object",
            "description": self.description,
            "properties": {name: spec.schema() for name, spec in self.fields.items()},
            "additionalProperties": False,
        }
        if self.required:
            schema["required"] = list(self.required)
        if self.one_of:
            schema["anyOf"] = [{"required": [name]} for name in self.one_of]
        if self.example:
            schema["example"] = self.example
        return schema


def _ttl(description: str, high=limits.ttl_limit) -> Integer:
    """A time to live; a new hold's is bounded by the extension cap as well."""
    return Integer("HOLD_TTL_MIN", high, description, example=900)


REASON = Text(limits.MAX_REASON, "Why, in a few words; shown in the staff dashboard.",
              blank_allowed=True, example="customer left the checkout")

NEW_RESERVATION = Body(
    "NewReservation",
    "Hold units of one product for a storefront owner. Give at least one owner field.",
    {
        "sku": Text(100, "The product's SKU.", example="TEE-BLACK-M"),
        "quantity": Integer(1, limits.MAX_HOLD_QUANTITY, "Units to hold.", example=2),
        "location": Text(20,  # a code's length (services.locations.CODE)
                         "Where to hold them: a location's code (any case). Omitted: the"
                         " first sellable location, in the shop's allocation order, that"
                         " has them all.", example="MAIN"),
        "ttl_seconds": _ttl("Seconds until the hold expires; the server default when omitted."),
        "session_key": Text(limits.MAX_SESSION_KEY, "The shopper's session key."),
        "customer_id": Integer(1, limits.MAX_CUSTOMER_ID, "The storefront's customer id."),
        "cart_id": Integer(1, MAX_INT32, "An existing cart."),
        "order_id": Integer(1, MAX_INT32, "An existing order."),
    },
    required=("sku", "quantity"),
    one_of=("session_key", "customer_id", "cart_id", "order_id"),
    example={"sku": "TEE-BLACK-M", "quantity": 2, "ttl_seconds": 900, "session_key": "s-1f3a"},
)
RELEASE = Body("Release", "Why the hold is released (optional).", {"reason": REASON})
COMMIT = Body("Commit", "Why the held units left the shop (optional; default: sold).",
              {"reason": REASON})
EXTEND = Body(
    "Extend",
    "Keep the hold until now + ttl_seconds; never past its creation + the extension cap.",
    {"ttl_seconds": _ttl("Seconds from now until the hold expires.", high="HOLD_TTL_MAX")},
    required=("ttl_seconds",),
)
CART_RESERVE = Body(
    "CartReserve", "Hold every item of the cart, or nothing.",
    {"ttl_seconds": _ttl("Seconds until the holds expire; the server default when omitted.")},
)
CONFIRM = Body("Confirm", "No fields.", {})
CANCEL = Body("Cancel", "Why the order is cancelled (optional).", {"reason": REASON})

IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")  # visible ASCII; use fullmatch
