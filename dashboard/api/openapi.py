"""The OpenAPI 3 document at /api/v1/openapi.json, built from the same definitions the API
enforces (`schemas`), so a storefront can integrate from it alone."""
from __future__ import annotations

from flask import current_app, jsonify

from ..models import HOLD_STATUSES, ORDER_STATUSES
from ..services.housekeeping import KEEP_IDEMPOTENCY_KEYS
from . import bp, catalogue_openapi, schemas
from .body import MAX_BODY_BYTES
from .levels import LOCATIONS_SCHEMA

ERROR_CODES = [
    "malformed_json", "invalid_idempotency_key", "unauthorized", "not_found", "unknown_sku",
    "inactive_sku", "insufficient_stock", "reservation_not_active", "order_wrong_state",
    "order_not_held", "idempotency_in_progress", "body_too_large", "unsupported_media_type",
    "invalid", "extend_beyond_cap", "idempotency_key_reused", "conflict", "unknown_location",
]

DESCRIPTION = f"""\
Holds (reservations) of stock for a storefront, with carts and orders.

**Authentication**: `Authorization: Bearer <token>`; a token is created once with
`flask --app wsgi api-client create NAME`. A missing, unknown or deactivated token gets 401.

**Scope**: a client sees and acts only on the holds it created and on the carts and orders
of its storefront (their `api_client_id`, set by the storefront that writes them); any
other id answers 404 `not_found`, exactly like an id that does not exist. A client granted
every storefront (`api-client create --all-storefronts`, or the admin page) reaches all.

**Errors** are JSON: `{{"error": code, "message": text, ...}}`. Branch on `error` (stable
codes); `message` is for people. 422 `invalid` carries `fields`, one message per bad field
(unknown fields are refused).

**Bodies** are JSON objects (`Content-Type: application/json`, at most {MAX_BODY_BYTES} bytes);
an empty body counts as `{{}}`. Integers are JSON integers (`2.0` is accepted as 2; `"2"`
and `true` are not).

**Idempotency**: every POST takes an optional `Idempotency-Key` header (1-255 visible ASCII
characters, unique per client). The key, the call's effect and its answer are saved in ONE
transaction: what is stored is the answer (status and body) the call produced, successes
and refusals alike (e.g. 409 `insufficient_stock`). A retry with the same key, path and body
gets that answer again (header `Idempotent-Replayed: true`) and has no second effect.
When the key is free again: at once if the call did not complete (400, 401, 413, 415,
422 `invalid` from body validation, a 5xx, a connection dropped or a server that died
before the commit: nothing was saved, so the retry runs the call). A concurrent request
with the same key waits for the first to finish and then gets its answer; if the first
takes longer than a few seconds: 409 `idempotency_in_progress` with `Retry-After`. The
same key with another path or body: 422 `idempotency_key_reused`. Keys are remembered for
{int(KEEP_IDEMPOTENCY_KEYS.total_seconds() // 3600)} hours.

**Outages**: while the database is unavailable every call answers 503
`database_unavailable` with `Retry-After`. `outcome` says what is known: `not_applied`
(rolled back; retry), or `unknown` (the connection was lost while saving: it may or may
not have been applied; retry with the same `Idempotency-Key` to learn which, it is applied
at most once).

**Locations**: stock is kept per location (a warehouse or a store), named by its code.
Product answers carry the totals and `locations`, the figures at each open location. A
hold is at one location: name it with `location`, or the first sellable location in the
shop's allocation order that has every unit takes it; a cart's lines may land at different
locations. Every hold answer says its `location`.

**Times** are RFC 3339 UTC (`2026-11-21T12:00:00Z`).
"""


@bp.get("/openapi.json")
def openapi_document():
    cache = current_app.extensions.setdefault("stockroom_api", {})
    if "openapi" not in cache:
        cache["openapi"] = build()
    return jsonify(cache["openapi"])


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _error_response(description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": _json(_ref("schemas", "Error"))}
    if headers:
        response["headers"] = headers
    return response


_NULLABLE_INT = {"type": "integer", "nullable": True}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time"}

RESERVATION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "sku", "location", "quantity", "status", "expires_at", "created_at",
                 "ended_at", "end_reason", "session_key", "customer_id", "cart_id", "order_id"],
    "properties": {
        "id": {"type": "integer"},
        "sku": {"type": "string"},
        "location": {"type": "string", "description": "the code of the location holding it"},
        "quantity": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": list(HOLD_STATUSES)},
        "expires_at": _TIME,
        "created_at": _TIME,
        "ended_at": {**_TIME, "nullable": True, "description": "null while active"},
        "end_reason": _NULLABLE_TEXT,
        "session_key": _NULLABLE_TEXT,
        "customer_id": _NULLABLE_INT,
        "cart_id": _NULLABLE_INT,
        "order_id": _NULLABLE_INT,
    },
}
PRODUCT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sku", "name", "on_hand", "reserved", "available", "locations",
                 "low_stock_threshold", "is_active"],
    "properties": {
        "sku": {"type": "string"},
        "name": {"type": "string"},
        "on_hand": {"type": "integer", "minimum": 0, "description": "total of all locations"},
        "reserved": {"type": "integer", "minimum": 0},
        "available": {"type": "integer", "description": "on_hand - reserved"},
        "locations": LOCATIONS_SCHEMA,
        "low_stock_threshold": {"type": "integer", "minimum": 0},
        "is_active": {"type": "boolean", "description": "inactive products cannot be held"},
    },
}
ORDER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "status", "customer_id", "total", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": list(ORDER_STATUSES)},
        "customer_id": _NULLABLE_INT,
        "total": {"type": "string", "example": "59.90", "description": "decimal, 2 places"},
        "updated_at": _TIME,
    },
}
# A refusal's per-location figures: a hold is at one location, so each says what it has.
_AVAILABLE_AT = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": False,
              "required": ["location", "available"],
              "properties": {"location": {"type": "string"}, "available": {"type": "integer"}}},
}
ERROR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "enum": ERROR_CODES},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "invalid: one message per bad field"},
        "available": {"type": "integer",
                      "description": "insufficient_stock: units available (all locations)"},
        "sku": {"type": "string", "description": "insufficient_stock: the SKU asked for"},
        "locations": {**_AVAILABLE_AT,
                      "description": "insufficient_stock: what each sellable location has"},
        "short": {
            "type": "array", "description": "insufficient_stock (cart): each short SKU",
            "items": {"type": "object", "additionalProperties": False,
                      "required": ["sku", "requested", "available", "locations"],
                      "properties": {"sku": {"type": "string"},
                                     "requested": {"type": "integer"},
                                     "available": {"type": "integer",
                                                   "description": "the most at any one"
                                                                  " location"},
                                     "locations": _AVAILABLE_AT}},
        },
        "status": {"type": "string",
                   "description": "reservation_not_active / order_wrong_state: current status"},
        "ended_at": {**_TIME, "nullable": True},
        "ended_by": {"type": "string", "nullable": True,
                     "enum": ["staff", "storefront", "system", None],
                     "description": "reservation_not_active: who ended it, by kind only"},
        "cap": {**_TIME, "description": "extend_beyond_cap: the latest possible expiry"},
        "skus": {"type": "array", "items": {"type": "string"},
                 "description": "order_not_held: SKUs not fully held"},
    },
}


def _parameters() -> dict:
    def path_id(name: str, high: int, what: str) -> dict:
        return {"name": name, "in": "path", "required": True, "description": what,
                "schema": {"type": "integer", "minimum": 1, "maximum": high}}

    return {
        "ReservationId": path_id("reservation_id", schemas.MAX_INT64, "A reservation's id."),
        "CartId": path_id("cart_id", schemas.MAX_INT32, "A cart's id."),
        "OrderId": path_id("order_id", schemas.MAX_INT32, "An order's id."),
        "Sku": {"name": "sku", "in": "path", "required": True, "description": "A SKU.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                "example": "TEE-BLACK-M"},
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Makes a retry safe: the key is saved with the effect and the"
                           " answer in one transaction, and the same key gets that answer"
                           " again; a call that did not complete leaves the key free.",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
        },
    }


def _responses() -> dict:
    retry_after = {"Retry-After": {"description": "seconds (idempotency_in_progress)",
                                   "schema": {"type": "integer"}}}
    return {
        "BadRequest": _error_response(
            "malformed_json (the body is not JSON) or invalid_idempotency_key"),
        "Unauthorized": _error_response(
            "unauthorized: no bearer token, or an unknown or deactivated one",
            {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}),
        "NotFound": _error_response("not_found (also for ids that cannot exist)"),
        "TooLarge": _error_response("body_too_large"),
        "UnsupportedMediaType": _error_response("unsupported_media_type: send JSON"),
        "Invalid": _error_response(
            "invalid (with `fields`), or idempotency_key_reused"),
        "Conflict": _error_response("the refusal named by `error`", retry_after),
        "Unavailable": _error_response(
            "database_unavailable, with `outcome`: not_applied (retry) or unknown (retry"
            " with the same Idempotency-Key to learn the outcome)",
            {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}),
    }


def _post(operation_id: str, summary: str, body: schemas.Body, success: dict,
          path_parameter: str | None, conflict: str, body_required: bool = False,
          not_found: str = "not_found") -> dict:
    parameters = [_ref("parameters", "IdempotencyKey")]
    if path_parameter:
        parameters.insert(0, _ref("parameters", path_parameter))
    replayed = {"Idempotent-Replayed": {
        "description": "present when this is a stored answer to an earlier request",
        "schema": {"type": "string", "enum": ["true"]}}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": parameters,
        "requestBody": {"required": body_required,
                        "content": _json(_ref("schemas", body.name))},
        "responses": {
            **{status: {**response, "headers": replayed} for status, response in success.items()},
            "400": _ref("responses", "BadRequest"),
            "401": _ref("responses", "Unauthorized"),
            "404": _error_response(not_found),
            "409": {**_error_response(conflict + "; or idempotency_in_progress"),
                    "headers": _responses()["Conflict"]["headers"]},
            "413": _ref("responses", "TooLarge"),
            "415": _ref("responses", "UnsupportedMediaType"),
            "422": _ref("responses", "Invalid"),
            "503": _ref("responses", "Unavailable"),
        },
    }


def _ok(description: str, schema: dict, links: dict | None = None) -> dict:
    response = {"description": description, "content": _json(schema)}
    if links:
        response["links"] = links
    return response


def _hold_links(id_expression: str) -> dict:
    parameters = {"reservation_id": id_expression}
    return {
        "GetReservation": {"operationId": "getReservation", "parameters": parameters},
        "ReleaseReservation": {"operationId": "releaseReservation", "parameters": parameters},
        "CommitReservation": {"operationId": "commitReservation", "parameters": parameters},
        "ExtendReservation": {"operationId": "extendReservation", "parameters": parameters},
    }


def build() -> dict:
    hold = _ref("schemas", "Reservation")
    order = _ref("schemas", "Order")
    secured = [{"bearer": []}]
    paths = {
        "/ping": {"get": {
            "operationId": "ping", "summary": "Liveness of the API process (no database).",
            "security": [],
            "responses": {"200": _ok("always {}", {"type": "object",
                                                   "additionalProperties": False})},
        }},
        "/products/{sku}": {"get": {
            "operationId": "getProduct",
            "summary": "A product's stock figures: totals, and at each open location.",
            "parameters": [_ref("parameters", "Sku")],
            "responses": {
                "200": _ok("the product (inactive ones too)", _ref("schemas", "Product")),
                "401": _ref("responses", "Unauthorized"),
                "404": _error_response("unknown_sku"),
            },
        }},
        "/reservations": {"post": _post(
            "createReservation",
            "Hold units of a product at one location (422 invalid with `fields.location` if"
            " the location named is closed or does not sell to the storefront).",
            schemas.NEW_RESERVATION,
            {"201": _ok("the new hold", hold, _hold_links("$response.body#/id"))},
            None, "insufficient_stock (with `available` and `locations`: what each sellable"
            " location has; a hold is at one location)", body_required=True,
            not_found="unknown_sku, inactive_sku (inactive products cannot be held), or"
                      " unknown_location",
        )},
        "/reservations/{reservation_id}": {"get": {
            "operationId": "getReservation", "summary": "A hold, active or ended.",
            "parameters": [_ref("parameters", "ReservationId")],
            "responses": {
                "200": _ok("the hold", hold),
                "401": _ref("responses", "Unauthorized"),
                "404": _ref("responses", "NotFound"),
            },
        }},
        "/reservations/{reservation_id}/release": {"post": _post(
            "releaseReservation", "Give the held units back.", schemas.RELEASE,
            {"200": _ok("the hold, now released", hold)}, "ReservationId",
            "reservation_not_active (with its `status`, `ended_at`, `ended_by`)",
        )},
        "/reservations/{reservation_id}/commit": {"post": _post(
            "commitReservation", "The held units are sold: on_hand and reserved both fall.",
            schemas.COMMIT, {"200": _ok("the hold, now committed", hold)}, "ReservationId",
            "reservation_not_active (with its `status`, `ended_at`, `ended_by`)",
        )},
        "/reservations/{reservation_id}/extend": {"post": _post(
            "extendReservation",
            "Keep an active hold until now + ttl_seconds (422 extend_beyond_cap past the cap,"
            " 422 invalid if that is not later than its current expiry).",
            schemas.EXTEND, {"200": _ok("the hold with its new expiry", hold)}, "ReservationId",
            "reservation_not_active", body_required=True,
        )},
        "/carts/{cart_id}/reserve": {"post": _post(
            "reserveCart", "Hold every item of a cart, or nothing (422 for an empty cart).",
            schemas.CART_RESERVE,
            {"201": _ok("one hold per cart item", {"type": "array", "items": hold},
                        _hold_links("$response.body#/0/id"))},
            "CartId", "insufficient_stock (with `short`: every short SKU and what each"
            " location has); nothing was held",
        )},
        "/orders/{order_id}/confirm": {"post": _post(
            "confirmOrder", "pending -> confirmed; commits the order's holds.", schemas.CONFIRM,
            {"200": _ok("the confirmed order", order)}, "OrderId",
            "order_wrong_state (with `status`), or order_not_held (with `skus`)",
        )},
        "/orders/{order_id}/cancel": {"post": _post(
            "cancelOrder",
            "pending -> cancelled releases its holds; confirmed -> cancelled returns the units.",
            schemas.CANCEL, {"200": _ok("the cancelled order", order)}, "OrderId",
            "order_wrong_state (with `status`)",
        )},
    }
    components = {
        "Product": PRODUCT, "Reservation": RESERVATION, "Order": ORDER,
        "Error": {**ERROR, "properties": dict(ERROR["properties"])},
    }
    catalogue_openapi.add_to(paths, components)
    for item in paths.values():
        for operation in item.values():
            operation.setdefault("security", secured)
    bodies = [schemas.NEW_RESERVATION, schemas.RELEASE, schemas.COMMIT, schemas.EXTEND,
              schemas.CART_RESERVE, schemas.CONFIRM, schemas.CANCEL]
    return {
        "openapi": "3.0.3",
        "info": {"title": "Stockroom storefront API", "version": "1.0.0",
                 "description": DESCRIPTION},
        "servers": [{"url": "/api/v1"}],
        "security": secured,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": _parameters(),
            "responses": _responses(),
            "schemas": {
                **components,
                **{body.name: body.schema() for body in bodies},
            },
        },
    }
