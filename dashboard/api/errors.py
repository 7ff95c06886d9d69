"""JSON errors of the storefront API, mapped in one place.

Every refusal is `{"error": code, "message": text, ...facts}`; `code` is stable and is
what a storefront branches on, `message` is for people.
"""
from __future__ import annotations

from datetime import datetime

from flask import jsonify
from werkzeug.exceptions import HTTPException

from ..services.errors import InvalidInput, ReservationNotActive, StockroomError

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


def http_error(error: HTTPException):
    """Werkzeug's errors (no route, wrong method, ...) in the API's JSON shape."""
    status = error.code or 500
    if status >= 500:
        body = {"error": "server_error",
                "message": "something went wrong on our side; nothing was changed"}
    else:
        body = {"error": _HTTP_CODES.get(status, f"http_{status}"),
                "message": error.description or "request refused"}
    # Keep headers the protocol needs, e.g. Allow on 405.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return error_response(body, status, headers)
