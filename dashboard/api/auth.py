"""Bearer tokens: who is calling, as the ledger's actor.

A token lookup is one indexed query (sha256 of the token); `last_used_at` is written at
most once a minute per client (`services.staff.record_api_client_use`).
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import g, request

from ..services import Actor, client_for_token, record_api_client_use
from .errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="stockroom"'}


def authenticate() -> None:
    """Set `g.actor` from the Authorization header, or refuse with 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>",
                       headers=_CHALLENGE)
    client = client_for_token(token.strip())
    if client is None:
        raise ApiError(401, "unauthorized", "the token is unknown or its client is deactivated",
                       headers=_CHALLENGE)
    g.actor = Actor.api(client)  # plain values: survive the rollbacks later in the request
    record_api_client_use(client, datetime.now(timezone.utc))

