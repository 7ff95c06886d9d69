"""The catalogue calls in the OpenAPI document, from the definitions they enforce."""
from __future__ import annotations

from ..queries.catalogue import MAX_PAGE
from ..services.catalogue import MAX_BATCH
from .catalogue_schemas import BATCH_ITEM, CATALOGUE_PRODUCT, MAX_BATCH_BYTES, PRODUCT_PUT


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("schemas", "Error")}}}


def _ok(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_BODY_ERRORS = {
    "400": _ref("responses", "BadRequest"),
    "401": _ref("responses", "Unauthorized"),
    "409": _error("conflict: a concurrent change took the same SKU or barcode; retry"),
    "413": _ref("responses", "TooLarge"),
    "415": _ref("responses", "UnsupportedMediaType"),
}

BATCH = {
    "type": "object", "additionalProperties": False, "required": ["products"],
    "description": f"1 to {MAX_BATCH:,} products (at most {MAX_BATCH_BYTES:,} bytes), applied"
                   " all or nothing.",
    "properties": {"products": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                "items": _ref("schemas", BATCH_ITEM.name)}},
}
BATCH_RESULT = {
    "type": "object", "additionalProperties": False,
    "required": ["created", "updated", "unchanged", "products"],
    "properties": {
        "created": {"type": "integer"}, "updated": {"type": "integer"},
        "unchanged": {"type": "integer"},
        "products": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["sku", "status"],
            "properties": {"sku": {"type": "string"},
                           "status": {"type": "string",
                                      "enum": ["created", "updated", "unchanged"]}}}},
    },
}
PAGE = {
    "type": "object", "additionalProperties": False, "required": ["products", "next", "has_more"],
    "properties": {
        "products": {"type": "array", "items": _ref("schemas", "CatalogueProduct")},
        "next": {"type": "string", "nullable": True,
                 "description": "pass as `after` for the next page, or later for what changed"
                                " since (null only when nothing was ever listed)"},
        "has_more": {"type": "boolean"},
    },
}
ROW_ERRORS = {
    "type": "array", "description": "batch invalid: every wrong product (index in the batch)",
    "items": {"type": "object", "additionalProperties": False,
              "required": ["index", "sku", "field", "message"],
              "properties": {"index": {"type": "integer"}, "sku": {"type": "string"},
                             "field": {"type": "string"}, "message": {"type": "string"}}},
}


def add_to(paths: dict, schemas: dict) -> None:
    """Add the catalogue operations and their schemas to the document being built."""
    paths.setdefault("/products/{sku}", {})["put"] = {
        "operationId": "putProduct",
        "summary": "Create a product or update its catalogue fields (never its stock).",
        "parameters": [_ref("parameters", "Sku")],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("schemas", PRODUCT_PUT.name)}}},
        "responses": {
            "201": _ok("created", _ref("schemas", "CatalogueProduct")),
            "200": _ok("updated, or unchanged (see `status`)", _ref("schemas", "CatalogueProduct")),
            **_BODY_ERRORS,
            "422": _error("invalid (with `fields`): a wrong value, a barcode another product"
                          " has, no name for a new product, or on_hand for an existing one"),
        },
    }
    paths["/products/batch"] = {"post": {
        "operationId": "batchProducts",
        "summary": f"Create or update up to {MAX_BATCH:,} products, all or nothing.",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("schemas", "CatalogueBatch")}}},
        "responses": {
            "200": _ok("every product applied", _ref("schemas", "CatalogueBatchResult")),
            **_BODY_ERRORS,
            "422": _error("invalid: nothing was changed; `errors` lists every wrong product"),
        },
    }}
    paths["/products"] = {"get": {
        "operationId": "listProducts",
        "summary": "The catalogue with stock figures, in the order products changed"
                   " (updated_at, then id); every catalogue or stock change moves updated_at.",
        "parameters": [
            {"name": "updated_since", "in": "query", "required": False,
             "description": "only products changed at or after this RFC 3339 time",
             "schema": {"type": "string", "format": "date-time"}},
            {"name": "after", "in": "query", "required": False,
             "description": "the `next` cursor of an earlier page",
             "schema": {"type": "string", "maxLength": 600}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}},
        ],
        "responses": {
            "200": _ok("one page", _ref("schemas", "CataloguePage")),
            "401": _ref("responses", "Unauthorized"),
            "414": {"description": "a request line over 8,190 bytes, refused by the HTTP"
                                   " server (gunicorn or the proxy) before the API sees it",
                    "content": {"text/html": {"schema": {"type": "string"}}}},
            "422": _error("invalid (with `fields`): a wrong time, cursor or limit"),
        },
    }}
    schemas.update({
        "CatalogueProduct": CATALOGUE_PRODUCT, PRODUCT_PUT.name: PRODUCT_PUT.schema(),
        BATCH_ITEM.name: BATCH_ITEM.schema(), "CatalogueBatch": BATCH,
        "CatalogueBatchResult": BATCH_RESULT, "CataloguePage": PAGE,
    })
    schemas["Error"]["properties"]["errors"] = ROW_ERRORS
