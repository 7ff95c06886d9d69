"""Storefront JSON API (SPEC §7): bearer tokens, idempotent POSTs, an OpenAPI document.

Modules: `auth` (tokens), `body` (reading JSON), `schemas` (validation and the request
schemas), `idempotency`, `errors` (one JSON error shape), `routes` (the calls), `openapi`.
"""
from flask import Blueprint, request
from werkzeug.exceptions import HTTPException

from ..services.errors import StockroomError
from .auth import authenticate
from ..outage import OUTAGES
from .errors import ApiError, database_unavailable, handle_api_error, handle_refusal, http_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Public: the contract and a no-database liveness probe (the benchmark's ceiling).
PUBLIC_ENDPOINTS = {"api.openapi_document", "api.ping"}


@bp.before_request
def _authenticate():
    if request.endpoint not in PUBLIC_ENDPOINTS:
        authenticate()


@bp.after_request
def _no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")
    return response


bp.register_error_handler(ApiError, handle_api_error)
bp.register_error_handler(StockroomError, handle_refusal)
bp.register_error_handler(HTTPException, http_error)
for _outage in OUTAGES:
    bp.register_error_handler(_outage, database_unavailable)

# catalogue first: it registers the `sku` URL converter the product routes use.
from . import catalogue, openapi, routes  # noqa: E402,F401  (registers the views on bp)
