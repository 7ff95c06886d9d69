"""Staff sessions: one row per signed-in device, so a session can really end.

The session cookie carries only a random id; its sha256 is the row's key (a stolen
database copy yields no usable cookie). A row ends when its owner signs out, signs out
everywhere, or changes their password, and when an admin resets their password, changes
their role, deactivates them or ends their sessions. A row is refused when it has gone
unused for SESSION_IDLE_MINUTES or is past its absolute lifetime (SESSION_MAX_HOURS, or
REMEMBER_DAYS for "keep me signed in", which is not subject to the idle limit).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from ..extensions import db
from ..models import StaffSession, StaffUser
from .transaction import transaction, transactional

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transactional
def start_session(staff_id: int, *, remember: bool, user_agent: str | None, ip: str | None,
                  now: datetime) -> str:
    """A new session for this staff member; returns its id (shown only to the cookie)."""
    config = current_app.config
    lifetime = (timedelta(days=config["REMEMBER_DAYS"]) if remember
                else timedelta(hours=config["SESSION_MAX_HOURS"]))
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(
        token_hash=_hash(token), staff_id=staff_id, created_at=now, last_seen_at=now,
        expires_at=now + lifetime, remember=bool(remember),
        user_agent=(user_agent or "")[:200] or None, ip=(ip or "")[:45] or None,
    ))
    return token


def staff_for_session(token: str, now: datetime) -> StaffUser | None:
    """The active staff member this session id belongs to, or None when the session has
    ended, gone idle or expired. One indexed query; last_seen_at written at most once a minute."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100 or not token.isascii():
        return None
    found = db.session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == _hash(token))
    ).first()
    if found is None:
        return None
    row, user = found
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    if (not user.is_active or now >= row.expires_at
            or (not row.remember and now - row.last_seen_at >= idle)):
        return None
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row_id = row.id
        with transaction():
            # Conditional, so a burst of requests on one session writes the row once.
            db.session.execute(
                update(StaffSession)
                .where(StaffSession.id == row_id,
                       StaffSession.last_seen_at <= now - LAST_SEEN_RESOLUTION)
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )
    user.session_token = token
    return user


def why_session_ended(token: str | None, now: datetime) -> str:
    """Why this session id no longer signs anyone in: "signed_out" (no session on this
    device), "ended" (its row was deleted: signed out everywhere, a role or password change),
    "idle", "expired" (its hard limit) or "inactive" (the account was deactivated)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100 or not token.isascii():
        return "signed_out"
    found = db.session.execute(
        select(StaffSession, StaffUser.is_active)
        .join(StaffUser, StaffUser.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == _hash(token))
    ).first()
    if found is None:
        return "ended"
    row, active = found
    if not active:
        return "inactive"
    return "expired" if now >= row.expires_at else "idle"


@transactional
def end_session(token: str) -> None:
    """Sign this device out: its cookie, copied or not, no longer signs anyone in."""
    if isinstance(token, str):
        db.session.execute(delete(StaffSession).where(StaffSession.token_hash == _hash(token)))


@transactional
def end_sessions(staff_id: int, *, keep: str | None = None) -> int:
    """Sign a staff member out everywhere (but on the device whose session is `keep`)."""
    return end_all_sessions(staff_id, keep)


def end_all_sessions(staff_id: int, keep: str | None = None) -> int:
    """Inside the caller's transaction: delete the staff member's sessions."""
    statement = delete(StaffSession).where(StaffSession.staff_id == staff_id)
    if keep is not None:
        statement = statement.where(StaffSession.token_hash != _hash(keep))
    return db.session.execute(statement).rowcount

