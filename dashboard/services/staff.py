"""Staff accounts and storefront API clients: creation, credentials, deactivation."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import ROLES, ApiClient, StaffUser, UTCDateTime
from .errors import Conflict, InvalidInput, NotFound
from .sessions import end_all_sessions
from .transaction import can_run_alone, run_alone, transaction, transactional

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this keeps unknown-email sign-ins as slow as wrong-password ones.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "sr_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _email(value) -> str:
    email = value.strip().lower() if isinstance(value, str) else ""
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidInput("enter a valid email address", field="email")
    return email


def _role(value) -> str:
    if value not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    return value


def _password(value) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters", field="password")
    if len(value) > 1024:
        raise InvalidInput("password is too long", field="password")
    return value


def _staff(staff_id: int) -> StaffUser:
    user = db.session.get(StaffUser, staff_id) if 0 < staff_id < 2**31 else None
    if user is None:
        raise NotFound(f"staff member {staff_id} does not exist")
    return user


@transactional
def create_staff(email: str, *, role: str, password: str, name: str | None = None,
                 now: datetime) -> StaffUser:
    email = _email(email)
    name = (name or email.split("@")[0]).strip()[:100]
    user = StaffUser(
        email=email, name=name, role=_role(role),
        password_hash=_hasher.hash(_password(password)), is_active=True, created_at=now,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # @transactional rolls back
        raise Conflict(f"{email} already has an account") from None
    return user


def verify_password(email: str, password: str) -> StaffUser | None:
    """The active staff member with these credentials, or None. Constant work either way."""
    email = email.strip().lower() if isinstance(email, str) else ""
    user = db.session.scalars(select(StaffUser).where(StaffUser.email == email)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    return user


@transactional
def set_role(staff_id: int, role: str) -> StaffUser:
    user = _staff(staff_id)
    user.role = _role(role)
    end_all_sessions(staff_id)  # permissions changed: sign in again
    return user


@transactional
def set_staff_active(staff_id: int, active: bool) -> StaffUser:
    user = _staff(staff_id)
    user.is_active = bool(active)
    end_all_sessions(staff_id)
    return user


@transactional
def reset_password(staff_id: int, password: str) -> StaffUser:
    user = _staff(staff_id)
    user.password_hash = _hasher.hash(_password(password))
    end_all_sessions(staff_id)  # sign out everywhere
    return user


@transactional
def change_own_password(staff_id: int, current: str, new: str, *, keep_session: str | None
                        ) -> StaffUser:
    """A staff member's own new password, given the current one; their other devices are
    signed out (the one whose session is `keep_session` stays signed in)."""
    user = _staff(staff_id)
    try:
        _hasher.verify(user.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise InvalidInput("that is not your current password", field="current") from None
    if new == current:
        raise InvalidInput("choose a password different from the current one", field="password")
    user.password_hash = _hasher.hash(_password(new))
    end_all_sessions(staff_id, keep=keep_session)
    return user


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transactional
def create_api_client(name: str, *, now: datetime, all_storefronts: bool = False
                      ) -> tuple[ApiClient, str]:
    """A new client and its token; the token is returned once and only its hash is kept.

    A client reaches only the carts, orders and holds that are its own, unless granted
    `all_storefronts` (a shop whose one integration serves several storefronts)."""
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise InvalidInput("name must be 1 to 100 characters", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        name=name, token_hash=token_hash(token), token_prefix=token[:10], is_active=True,
        all_storefronts=bool(all_storefronts), created_at=now,
    )
    db.session.add(client)
    try:
        db.session.flush()
    except IntegrityError:  # @transactional rolls back
        raise Conflict(f"an API client named {name} already exists") from None
    return client, token


# Built once, columns only: it runs on every API call, where building the statement and
# loading an ORM object cost more Python than the indexed lookup itself.
_CLIENT_FOR_TOKEN = select(
    ApiClient.id, ApiClient.name, ApiClient.all_storefronts, ApiClient.last_used_at
).where(ApiClient.token_hash == bindparam("token_hash"), ApiClient.is_active)


class TokenClient(NamedTuple):
    """The API client a token belongs to, as the request needs it."""

    id: int
    name: str
    all_storefronts: bool
    last_used_at: datetime | None


def client_for_token(token: str) -> TokenClient | None:
    """The active client owning this token, or None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    values = {"token_hash": token_hash(token)}
    if can_run_alone():  # a read on its own: no BEGIN and COMMIT around it
        row = run_alone(_CLIENT_FOR_TOKEN, values)  # as the driver gives it: times unconverted
        return None if row is None else TokenClient(
            *row[:3], _UTC.process_result_value(row[3], None))
    row = db.session.execute(_CLIENT_FOR_TOKEN, values).first()
    return None if row is None else TokenClient(*row)


_UTC = UTCDateTime()


def record_api_client_use(client: TokenClient | ApiClient, now: datetime) -> None:
    """Note when a client last called, at most once a minute per client, so busy
    storefronts do not turn every call into a write to the same row."""
    if client.last_used_at is not None and now - client.last_used_at < LAST_USED_RESOLUTION:
        return
    with transaction():
        # Conditional, so a burst of requests from one client writes the row once.
        db.session.execute(
            update(ApiClient)
            .where(ApiClient.id == client.id,
                   or_(ApiClient.last_used_at.is_(None),
                       ApiClient.last_used_at <= now - LAST_USED_RESOLUTION))
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )


@transactional
def set_api_client_active(client_id: int, active: bool) -> ApiClient:
    client = db.session.get(ApiClient, client_id) if 0 < client_id < 2**31 else None
    if client is None:
        raise NotFound(f"API client {client_id} does not exist")
    client.is_active = bool(active)
    return client


@transactional
def set_api_client_storefronts(client_id: int, all_storefronts: bool) -> ApiClient:
    """Grant (or take back) a client's reach over every storefront's records."""
    client = db.session.get(ApiClient, client_id) if 0 < client_id < 2**31 else None
    if client is None:
        raise NotFound(f"API client {client_id} does not exist")
    client.all_storefronts = bool(all_storefronts)
    return client
