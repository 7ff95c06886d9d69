"""Staff submits applied once: the one-time token of a form, claimed in the transaction of
its effect (web/once.py opens that transaction and calls these inside it).

The claim is an `INSERT ... ON CONFLICT DO NOTHING` on the unique token hash: a second
submit of the same token while the first is running waits for it (at most
IDEMPOTENCY_WAIT_MS, then `SubmitInProgress`); once the first has committed, the second
finds its row and gets its answer. A submit whose transaction rolls back (refused, failed,
its worker killed) leaves no row: the same token may be submitted again.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from ..extensions import db
from ..models import Submission
from .transaction import LOCK_NOT_AVAILABLE, sqlstate

_TABLE = Submission.__table__
_CLAIM = {
    name: insert(_TABLE).on_conflict_do_nothing(index_elements=["token_hash"])
    .returning(_TABLE.c.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


class SubmitInProgress(Exception):
    """The same submit is still being applied by another request."""


@dataclass(frozen=True)
class Answered:
    """What the first submit of a token answered."""

    staff_id: int
    status_code: int
    message: str
    level: str
    location: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def claim_submission(token: str, staff_id: int, now: datetime) -> int | Answered:
    """Own the token in the open transaction (the row id), or the first submit's answer."""
    connection = db.session.connection()
    digest = token_hash(token)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"SET LOCAL lock_timeout = {int(current_app.config['IDEMPOTENCY_WAIT_MS'])}")
    try:
        row_id = connection.execute(_CLAIM[connection.dialect.name], dict(
            token_hash=digest, staff_id=staff_id, created_at=now)).scalar()
    except OperationalError as error:
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            raise SubmitInProgress() from error
        raise
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
    if row_id is not None:
        return row_id
    first = db.session.execute(
        select(Submission.staff_id, Submission.status_code, Submission.message,
               Submission.level, Submission.location)
        .where(Submission.token_hash == digest)
    ).one()
    return Answered(first.staff_id, first.status_code, first.message or "", first.level or "info",
                    first.location)


def record_answer(row_id: int, status_code: int, message: str, level: str,
                  location: str | None) -> None:
    """The answer of the submit, stored with its claim (committed by the caller)."""
    db.session.execute(
        update(Submission).where(Submission.id == row_id)
        .values(status_code=status_code, message=message[:2000], level=level[:10],
                location=(location or None) and location[:2000])
        .execution_options(synchronize_session=False)
    )
