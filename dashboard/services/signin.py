"""Signing staff in, with failed attempts throttled so guessing is slow but a stranger
cannot lock anyone out (OWASP's authentication cheat sheet).

Failures are counted per (account, address) and per address, never per account alone:
- LOGIN_MAX_FAILURES failures for one account from one address refuse that address for
  that account until the oldest of them leaves the window;
- LOGIN_ADDRESS_MAX_FAILURES failures from one address (on any accounts, made-up ones
  included) slow that address down for every account: each further try waits a delay
  that doubles with each failure, up to LOGIN_MAX_DELAY_SECONDS;
- so the right password from an address without failures of its own always signs in,
  whatever guesses were made from elsewhere.
Refusals say the same for every email, existing or not.

Failures live in the `login_attempts` table so every web worker and host shares the count.
Each attempt is recorded as a failure (and committed) before the password is checked, so
concurrent guesses on several workers cannot all slip under the limit; a successful
sign-in clears that account's failures from that address.
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
MAX_EMAIL = 254  # the column; a longer email (İ lower-cases to two characters) is cut


@dataclass(frozen=True)
class SignedIn:
    """Who signed in, and their sign-in before this one (read before this one replaced it)."""

    user: StaffUser
    name: str
    previous_at: datetime | None
    previous_ip: str | None


def sign_in(email: str, password: str, *, ip: str | None, now: datetime) -> SignedIn:
    """The active staff member with these credentials, with this sign-in recorded.

    Refuses with SignInThrottled (429, with the seconds to wait) while this account and
    address, or this address, is over its limit, and SignInRefused (401) for wrong
    credentials.
    """
    email = (email.strip().lower() if isinstance(email, str) else "")[:MAX_EMAIL]
    ip = (ip or "unknown")[:45]
    wait = _retry_after(email, ip, now)
    if wait is None and not _claim_attempt(email, ip, now):
        wait = _retry_after(email, ip, now) or 1
    if wait is not None:
        # Refused before checking the password, so guessing while refused learns nothing.
        raise SignInThrottled(_too_many(wait), retry_after=wait)
    user = verify_password(email, password)
    if user is None:
        wait = _retry_after(email, ip, now)  # this attempt already counts as a failure
        raise SignInRefused(_too_many(wait) if wait else NO_MATCH)
    signed_in = SignedIn(user, user.name, user.last_login_at, user.last_login_ip)
    _record_success(user, ip, now)
    return signed_in


def _retry_after(email: str, ip: str, now: datetime) -> int | None:
    """Seconds until this account may be tried from this address, or None if it may now."""
    waits = [w for w in (_pair_wait(email, ip, now), _address_wait(ip, now)) if w > 0]
    return max(1, math.ceil(max(waits))) if waits else None


def _pair_wait(email: str, ip: str, now: datetime) -> float:
    """Over the limit for this account from this address: until the limit-th most recent
    failure leaves the window (then one more try is allowed)."""
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    blocking = db.session.scalar(
        select(LoginAttempt.attempted_at)
        .where(LoginAttempt.email == email, LoginAttempt.ip == ip,
               LoginAttempt.attempted_at > now - window)
        .order_by(LoginAttempt.attempted_at.desc())
        .offset(config["LOGIN_MAX_FAILURES"] - 1)
        .limit(1)
    )
    return (blocking + window - now).total_seconds() if blocking is not None else 0


def _address_wait(ip: str, now: datetime, counted: int = 0) -> float:
    """Over the limit for this address: a delay after its latest failure that doubles with
    each failure over the limit, capped (slowed, never locked for long)."""
    config = current_app.config
    since = now - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    failures, latest = db.session.execute(
        select(func.count(), func.max(LoginAttempt.attempted_at))
        .where(LoginAttempt.ip == ip, LoginAttempt.attempted_at > since)
    ).one()
    over = failures - counted - config["LOGIN_ADDRESS_MAX_FAILURES"]
    if over < 0 or latest is None:
        return 0
    delay = min(config["LOGIN_MAX_DELAY_SECONDS"], 2 ** min(over, 30))
    return (latest + timedelta(seconds=delay) - now).total_seconds()


def _claim_attempt(email: str, ip: str, now: datetime) -> bool:
    """Count this attempt as a failure now; False (attempt withdrawn) if that takes this
    account and address over the limit, or comes too soon after another from this address."""
    config = current_app.config
    since = now - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    with transaction():
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= since))
        attempt = LoginAttempt(email=email, ip=ip, attempted_at=now)
        db.session.add(attempt)
        db.session.flush()
        attempt_id = attempt.id
    pair = db.session.scalar(
        select(func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.email == email, LoginAttempt.ip == ip,
               LoginAttempt.attempted_at > since)
    )
    earlier = db.session.scalar(
        select(func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.ip == ip, LoginAttempt.attempted_at > since,
               LoginAttempt.id < attempt_id)
    )
    # A concurrent attempt from this address already over its limit claimed the slot.
    crowded = earlier >= config["LOGIN_ADDRESS_MAX_FAILURES"] and db.session.scalar(
        select(func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.ip == ip, LoginAttempt.id != attempt_id,
               LoginAttempt.attempted_at >= now)
    ) > 0
    if pair > config["LOGIN_MAX_FAILURES"] or crowded:
        with transaction():
            db.session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
        return False
    return True


@transactional
def _record_success(user: StaffUser, ip: str, now: datetime) -> None:
    # Only this account's failures from this address: the address's count for other
    # accounts, and guesses at this account from elsewhere, still stand.
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.email == user.email,
                                                  LoginAttempt.ip == ip))
    user.last_login_at, user.last_login_ip = now, ip


def _too_many(seconds: int) -> str:
    if seconds < 120:
        return f"Too many failed sign-ins; try again in {seconds} second{'s' if seconds != 1 else ''}."
    minutes = math.ceil(seconds / 60)
    return f"Too many failed sign-ins; try again in {minutes} minutes."
