"""Signing staff in, with failed attempts throttled per account and per address.

Failures live in the `login_attempts` table so every web worker and host shares the count.
Each attempt is recorded as a failure (and committed) before the password is checked, so
concurrent guesses on several workers cannot all slip under the limit; a successful
sign-in clears the account's failures again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import LoginAttempt, StaffUser
from .errors import SignInRefused, SignInThrottled
from .staff import verify_password
from .transaction import transaction, transactional

NO_MATCH = "That email and password do not match an active account."


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, and their sign-in before this one (read before this one replaced it)."""

    user: StaffUser
    name: str
    previous_at: datetime | None
    previous_ip: str | None


def sign_in(email: str, password: str, *, ip: str | None, now: datetime) -> SignedIn:
    """The active staff member with these credentials, with this sign-in recorded.

    Refuses with SignInThrottled (429) while the account or address is over the limit, and
    SignInRefused (401) for wrong credentials.
    """
    email = email.strip().lower() if isinstance(email, str) else ""
    ip = (ip or "unknown")[:45]
    wait = _retry_after(email, ip, now)
    if wait is None and not _claim_attempt(email, ip, now):
        wait = _retry_after(email, ip, now) or current_app.config["LOGIN_WINDOW_SECONDS"]
    if wait is not None:
        # Refused before checking the password, so guessing during the lockout learns nothing.
        raise SignInThrottled(_too_many(wait), retry_after=wait)
    user = verify_password(email, password)
    if user is None:
        wait = _retry_after(email, ip, now)  # this attempt already counts as a failure
        raise SignInRefused(_too_many(wait) if wait else NO_MATCH)
    signed_in = SignedIn(user, user.name, user.last_login_at, user.last_login_ip)
    _record_success(user, ip, now)
    return signed_in


def _retry_after(email: str, ip: str, now: datetime) -> int | None:
    """Seconds until this account and address may try again, or None if they may now."""
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    limit = config["LOGIN_MAX_FAILURES"]
    since = now - window
    waits = []
    for column, value in ((LoginAttempt.email, email), (LoginAttempt.ip, ip)):
        # The limit-th most recent failure in the window: once it ages out, one more try is allowed.
        blocking = db.session.scalar(
            select(LoginAttempt.attempted_at)
            .where(column == value, LoginAttempt.attempted_at > since)
            .order_by(LoginAttempt.attempted_at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        if blocking is not None:
            waits.append((blocking + window - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


def _claim_attempt(email: str, ip: str, now: datetime) -> bool:
    """Count this attempt as a failure now; False (attempt withdrawn) if that is over the limit."""
    config = current_app.config
    since = now - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    with transaction():
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= since))
        attempt = LoginAttempt(email=email, ip=ip, attempted_at=now)
        db.session.add(attempt)
        db.session.flush()
        attempt_id = attempt.id
    for column, value in ((LoginAttempt.email, email), (LoginAttempt.ip, ip)):
        counted = db.session.scalar(
            select(func.count()).select_from(LoginAttempt)
            .where(column == value, LoginAttempt.attempted_at > since)
        )
        if counted > config["LOGIN_MAX_FAILURES"]:
            with transaction():
                db.session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
            return False
    return True


@transactional
def _record_success(user: StaffUser, ip: str, now: datetime) -> None:
    # Only the account's failures: a success must not wipe an address's count for other accounts.
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.email == user.email))
    user.last_login_at, user.last_login_ip = now, ip


def _too_many(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."
