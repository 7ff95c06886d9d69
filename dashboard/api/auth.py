"""Bearer tokens: who is calling, as the ledger's actor.

A token lookup is one indexed query (sha256 of the token). `last_used_at` is written at
most once a minute per client, so busy storefronts do not turn every call into a write
to the same row.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import g, request
from sqlalchemy import or_, update

from ..extensions import db
from ..models import ApiClient
from ..services import Actor, client_for_token
from .errors import ApiError

LAST_USED_RESOLUTION = timedelta(minutes=1)
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
    now = datetime.now(timezone.utc)
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_RESOLUTION:
        _touch(client.id, now)


def _touch(client_id: int, now: datetime) -> None:
    # Conditional, so a burst of requests from one client writes the row once.
    db.session.execute(
        update(ApiClient)
        .where(ApiClient.id == client_id,
               or_(ApiClient.last_used_at.is_(None),
                   ApiClient.last_used_at <= now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
