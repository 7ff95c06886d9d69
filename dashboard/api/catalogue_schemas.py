"""Request bodies and answers of the catalogue calls, validated and published from one
definition (as `schemas` does for the hold calls). The API checks JSON types and bounds;
the catalogue service then checks what only it can (check digits, a taken barcode, a
missing name on create)."""
from __future__ import annotations

from dataclasses import dataclass

from ..services import catalogue_fields as fields
from ..services import limits
from .levels import LOCATIONS_SCHEMA
from .schemas import Body, FieldError, Integer, Text

MAX_BATCH_BYTES = 2_000_000
PRICE_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"


@dataclass(frozen=True)
class Boolean:
    description: str

    def clean(self, value) -> bool:
        if not isinstance(value, bool):
            raise FieldError("must be true or false")
        return value

    def schema(self) -> dict:
        return {"type": "boolean", "description": self.description}


@dataclass(frozen=True)
class Price:
    description: str = "Price as a decimal string with at most 2 places."

    def clean(self, value) -> str:
        if not isinstance(value, str):
            raise FieldError('must be a decimal string like "9.90"')
        return value

    def schema(self) -> dict:
        return {"type": "string", "pattern": PRICE_PATTERN, "example": "9.90",
                "description": self.description}


@dataclass(frozen=True)
class OptionalText:
    """Text or null; null, "" and spaces all mean none (the field is cleared)."""

    max_length: int
    description: str
    pattern: str | None = None

    def clean(self, value) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise FieldError("must be text or null")
        if "\x00" in value:
            raise FieldError("must not contain NUL characters")
        if len(value) > self.max_length:
            raise FieldError(f"must be at most {self.max_length} characters")
        return value

    def schema(self) -> dict:
        schema = {"type": "string", "nullable": True, "maxLength": self.max_length,
                  "description": self.description}
        schema["pattern"] = self.pattern or r"^[^\u0000]*$"
        return schema


def _fields(with_sku: bool) -> dict:
    spec = {
        "name": Text(fields.MAX_NAME, "The product's name (required to create one).",
                     example="Black tee, M"),
        "price": Price(),
        "is_active": Boolean("false: new holds are refused (existing holds stay)."),
        "barcode": OptionalText(14, "GTIN-8/12/13/14 (EAN/UPC) digits with a valid check digit;"
                                " unique; null clears it.", pattern=r"^([0-9]{8}|[0-9]{12,14})?$"),
        "category": OptionalText(fields.MAX_CATEGORY, "The shop's department; null clears it."),
        "supplier": OptionalText(fields.MAX_SUPPLIER, "Who supplies it; null clears it."),
        "low_stock_threshold": Integer(0, limits.MAX_THRESHOLD, "Low-stock alert threshold."),
        "on_hand": Integer(0, limits.MAX_STOCK,
                           "Opening stock, only when the product is new (written as a receive);"
                           " refused for an existing product: stock changes go through"
                           " receive, adjust or count."),
    }
    if with_sku:
        spec = {"sku": Text(fields.MAX_SKU, "The product's SKU.", example="TEE-BLACK-M"), **spec}
    return spec


PRODUCT_PUT = Body(
    "CatalogueProductPut",
    "Create the product or update the fields given; fields left out stay as they are.",
    _fields(with_sku=False),
    example={"name": "Black tee, M", "price": "19.90", "barcode": "4006381333931",
             "category": "T-shirts", "supplier": "Acme Textiles", "on_hand": 25},
)
BATCH_ITEM = Body("CatalogueBatchItem", "One product of a batch, named by its SKU.",
                  _fields(with_sku=True), required=("sku",))

CATALOGUE_PRODUCT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sku", "name", "price", "is_active", "barcode", "category", "supplier",
                 "low_stock_threshold", "on_hand", "reserved", "available", "locations",
                 "updated_at"],
    "properties": {
        "sku": {"type": "string"},
        "name": {"type": "string"},
        "price": {"type": "string", "example": "19.90"},
        "is_active": {"type": "boolean"},
        "barcode": {"type": "string", "nullable": True},
        "category": {"type": "string", "nullable": True},
        "supplier": {"type": "string", "nullable": True},
        "low_stock_threshold": {"type": "integer", "minimum": 0},
        "on_hand": {"type": "integer", "minimum": 0},
        "reserved": {"type": "integer", "minimum": 0},
        "available": {"type": "integer", "description": "on_hand - reserved"},
        "locations": LOCATIONS_SCHEMA,
        "updated_at": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["created", "updated", "unchanged"],
                   "description": "PUT only: what the call did"},
    },
}
