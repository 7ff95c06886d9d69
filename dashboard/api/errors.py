"""JSON errors of the storefront API, mapped in one place.

Every refusal is `{"error": code, "message": text, ...facts}`; `code` is stable and is
what a storefront branches on, `message` is for people.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException

from ..outage import is_outage
from ..services.errors import InvalidInput, ReservationNotActive, StockroomError
from ..services.transaction import OutcomeUnknown

# The service names the new expiry `until`; API callers send ttl_seconds.
_FIELD_NAMES = {"until": "ttl_seconds"}

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
}


class ApiError(Exception):
    """A refusal decided by the API layer itself (auth, body format, validation)."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None,
                 **facts):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.facts = facts

    def payload(self) -> dict:
        return {"error": self.code, "message": self.message, **self.facts}


def invalid(fields: dict[str, str]) -> ApiError:
    """422 with one message per bad field."""
    return ApiError(422, "invalid", "; ".join(f"{k}: {v}" for k, v in fields.items()),
                    fields=fields)


def refusal(error: StockroomError) -> tuple[dict, int]:
    """A service refusal as (JSON body, status)."""
    body = {"error": error.code, "message": error.message}
    body.update({key: _plain(value) for key, value in error.details.items()})
    if isinstance(error, InvalidInput):
        fields = {_FIELD_NAMES.get(k, k): v for k, v in error.fields.items()}
        body["fields"] = fields or {"body": error.message}
    if isinstance(error, ReservationNotActive):
        body.update(status=error.status, ended_at=_plain(error.ended_at), ended_by=error.ended_by)
    return body, error.http_status


def _plain(value):
    return iso(value) if isinstance(value, datetime) else value


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def error_response(body: dict, status: int, headers: dict | None = None):
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_api_error(error: ApiError):
    return error_response(error.payload(), error.status, error.headers)


def handle_refusal(error: StockroomError):
    return error_response(*refusal(error))


def database_unavailable(error: Exception):
    """503 while the database is down; a commit lost on the way says its outcome is unknown."""
    if not is_outage(error):
        raise error  # a database refusal is a bug: the app's 500
    retry = {"Retry-After": str(current_app.config["RETRY_AFTER_UNAVAILABLE"])}
    if isinstance(error, OutcomeUnknown):
        body = {"error": "database_unavailable", "outcome": "unknown",
                "message": "the database connection was lost while saving: this may or may not"
                           " have been applied; send it again with the same Idempotency-Key to"
                           " learn the outcome (it is applied at most once)"}
    else:
        body = {"error": "database_unavailable", "outcome": "not_applied",
                "message": "the database is unavailable; nothing was changed, try again shortly"}
    return error_response(body, 503, retry)


def http_error(error: HTTPException):
    """Werkzeug's errors (no route, wrong method, ...) in the API's JSON shape."""
    status = error.code or 500
    original = getattr(error, "original_exception", None)
    if original is not None and is_outage(original):
        return database_unavailable(original)
    if status >= 500:
        body = {"error": "server_error", "message": "something went wrong on our side"}
    else:
        body = {"error": _HTTP_CODES.get(status, f"http_{status}"),
                "message": error.description or "request refused"}
    # Keep headers the protocol needs, e.g. Allow on 405.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return error_response(body, status, headers)
