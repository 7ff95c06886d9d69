"""Idempotency-Key: a retried POST gets the first answer again, and has one effect.

How a key is used (per API client):
1. its row is inserted and committed before the work starts (`status_code` null = in flight);
   the unique (api_client_id, key) index lets exactly one request own it;
2. the service runs (its own transaction);
3. the answer (status and body) is stored on the row.
A request that finds the row answers with the stored response if it is finished, with
409 `idempotency_in_progress` if it is not, and with 422 `idempotency_key_reused` if the
same key came with another method, path or body.

Stored: every answer the call produced, successes and refusals alike (an insufficient_stock
409 is replayed as it was, like Stripe does). Not stored, so the key stays free: requests
refused before the work starts (401, 400 malformed JSON, 413, 415, 422 body validation).
An unexpected error deletes the row so the retry runs again. Keys are kept for 24 hours;
the alerts job deletes older ones (`services.housekeeping.KEEP_IDEMPOTENCY_KEYS`).
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import IdempotencyKey
from ..services.transaction import transaction
from .errors import ApiError

RETRY_AFTER_SECONDS = 1
log = logging.getLogger(__name__)


def request_hash(method: str, path: str, canonical_body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical_body).hexdigest()


def claim(client_id: int, key: str, digest: str, now: datetime) -> int | tuple[dict, int]:
    """Own the key (returns the row id) or the stored answer to replay as (body, status)."""
    for _ in range(3):  # the owner may delete its row (it failed) between our two queries
        try:
            with transaction():
                row = IdempotencyKey(api_client_id=client_id, key=key, request_hash=digest,
                                     created_at=now)
                db.session.add(row)
                _commit_without_waiting_for_disk()
                db.session.flush()
                row_id = row.id  # read before commit expires it: saves a query
            return row_id
        except IntegrityError:
            pass  # another request owns the key (or owned it): look at what it stored
        earlier = db.session.execute(
            select(IdempotencyKey.request_hash, IdempotencyKey.status_code,
                   IdempotencyKey.response_body)
            .where(IdempotencyKey.api_client_id == client_id, IdempotencyKey.key == key)
        ).first()
        db.session.rollback()  # end the read; on SQLite it holds the write lock
        if earlier is None:
            continue
        if earlier.request_hash != digest:
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was already used for a different request")
        if earlier.status_code is None:
            raise _in_progress()
        return json.loads(earlier.response_body), earlier.status_code
    raise _in_progress()


def _in_progress() -> ApiError:
    return ApiError(409, "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being answered",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _commit_without_waiting_for_disk() -> None:
    """The claim needs no fsync of its own: the service's commit comes later and flushes the
    (single, ordered) write-ahead log up to and including it; after a crash before that
    commit, neither the claim nor the work happened, and the retry runs afresh."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def store(row_id: int, body, status: int) -> None:
    with transaction():
        db.session.execute(
            update(IdempotencyKey).where(IdempotencyKey.id == row_id)
            .values(status_code=status, response_body=json.dumps(body))
            .execution_options(synchronize_session=False)
        )


def forget(row_id: int) -> None:
    """Free the key after an unexpected error, so the client's retry runs the call again."""
    try:
        db.session.rollback()  # what the failed call left
        with transaction():
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
    except Exception:  # the original error is the one worth reporting
        log.exception("could not free idempotency key row %s", row_id)

