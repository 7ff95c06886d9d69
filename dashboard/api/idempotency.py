"""Idempotency-Key: a retried POST gets the first answer again, and has one effect.

How a key is used (per API client), all in ONE transaction:
1. its row is inserted (`INSERT ... ON CONFLICT DO NOTHING`): the unique (api_client_id,
   key) index lets exactly one running request own it; a concurrent request with the same
   key waits on that index until the owner commits or rolls back (at most
   `IDEMPOTENCY_WAIT_MS`, then 409 `idempotency_in_progress` with Retry-After);
2. the service runs in the same flat transaction (no SAVEPOINT: two round trips fewer);
3. the answer (status and body) is stored on the row, and the transaction commits once.
So the answer commits with the effect: there is no moment where one is saved without the
other. On PostgreSQL a reserve that is one quiet statement does all three in that statement
(`post(remembers=True)`, services.holds_pg._GATE): the key's row is inserted with its answer
by the statement that makes the hold, after taking the key's transaction lock, which this
module's claim takes too. If the key was answered meanwhile, its unique index refuses the
statement whole, and the request goes the way above (and replays).
A refusal rolls everything back (the claim too: "nothing was changed" is true), then
a second short transaction claims the key again and stores the refusal; if a retry with the
same key got in between, its committed answer is the one replayed to both. A request that
dies before its commit (worker killed, connection lost) leaves no row: the key is free
again at once. A request that finds a committed row replays its
answer (422 `idempotency_key_reused` if the method, path or body differ).

Stored: every answer the call produced, successes and refusals alike (an insufficient_stock
409 is replayed as it was, like Stripe does). Not stored, so the key stays free: requests
refused before the work starts (401, 400 malformed JSON, 413, 415, 422 body validation) and
calls that failed (5xx: rolled back). Keys are kept for 24 hours; the alerts job deletes
older ones (`services.housekeeping.KEEP_IDEMPOTENCY_KEYS`).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError

from ..extensions import db
from ..models import IdempotencyKey
from ..services.holds_pg import Remembered, key_lock
from ..services.transaction import LOCK_NOT_AVAILABLE, sqlstate
from .errors import ApiError

RETRY_AFTER_SECONDS = 1
_KEYS = IdempotencyKey.__table__


def request_hash(method: str, path: str, canonical_body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical_body).hexdigest()


def _claim_statement(dialect: str):
    if dialect == "postgresql":
        # The wait behind a running request with the same key is bounded by lock_timeout,
        # set for the rest of this transaction by the same statement (the FROM row is made,
        # and set_config run, before the insert waits on the index): no round trip of its
        # own. The service's own row locks are held for milliseconds; a longer wait there is
        # an outage (503) anyway.
        # It takes the key's transaction lock too, as the one-statement keyed reserve does
        # (services.holds_pg._GATE), so that one waits for this request before it locks a
        # product this one may be about to lock.
        return text(
            "INSERT INTO idempotency_keys (api_client_id, key, request_hash, created_at)"
            " SELECT :api_client_id, :key, :request_hash, :created_at"
            f" FROM (SELECT {key_lock(':api_client_id', ':key')}"
            "       FROM (SELECT set_config('lock_timeout', :lock_timeout, true)) AS bounded"
            "      ) AS gated"
            " ON CONFLICT (api_client_id, key) DO NOTHING RETURNING id"
        ).bindparams(bindparam("created_at", type_=_KEYS.c.created_at.type))
    return sqlite.insert(_KEYS).on_conflict_do_nothing(
        index_elements=["api_client_id", "key"]).returning(_KEYS.c.id)


_CLAIM = {name: _claim_statement(name) for name in ("postgresql", "sqlite")}


def remembered(client_id: int, key: str, digest: str) -> Remembered:
    """The key for a call that stores its answer in its one statement (`post(remembers=)`);
    the view adds how its answer is made."""
    return Remembered(client_id, key, digest, int(current_app.config["IDEMPOTENCY_WAIT_MS"]),
                      answer=None)


def claim(client_id: int, key: str, digest: str, now: datetime) -> int | tuple[dict, int]:
    """Own the key in the open transaction (returns the row id) or the stored answer to
    replay as (body, status). The claim is undone if the transaction rolls back."""
    connection = db.session.connection()
    dialect = connection.dialect.name
    values = dict(api_client_id=client_id, key=key, request_hash=digest, created_at=now)
    if dialect == "postgresql":
        values["lock_timeout"] = f"{int(current_app.config['IDEMPOTENCY_WAIT_MS'])}ms"
    try:
        row_id = connection.execute(_CLAIM[dialect], values).scalar()
    except OperationalError as error:
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            db.session.rollback()
            raise _in_progress() from error
        raise
    if row_id is not None:
        return row_id
    earlier = db.session.execute(
        select(IdempotencyKey.request_hash, IdempotencyKey.status_code,
               IdempotencyKey.response_body)
        .where(IdempotencyKey.api_client_id == client_id, IdempotencyKey.key == key)
    ).one()
    db.session.rollback()  # end the read; on SQLite it holds the write lock
    if earlier.request_hash != digest:
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was already used for a different request")
    return json.loads(earlier.response_body), earlier.status_code


def _in_progress() -> ApiError:
    return ApiError(409, "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being answered",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# Built once, on the table (an ORM-enabled UPDATE is compiled through the ORM's bulk path on
# every call: it cost more than the statement's round trip, bench/api.py).
_STORE = (_KEYS.update().where(_KEYS.c.id == bindparam("row_id"))
          .values(status_code=bindparam("status"), response_body=bindparam("body")))


def store(row_id: int, body, status: int) -> None:
    """The answer, in the same transaction as the effect (committed by the caller)."""
    db.session.connection().execute(
        _STORE, {"row_id": row_id, "status": status, "body": json.dumps(body)})
