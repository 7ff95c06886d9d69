"""Staff members and API clients as the admin pages (and the session loader) read them."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import ApiClient, StaffUser

MAX_LISTED = 1000  # staff and clients are counted in dozens; the cap keeps a page bounded


def staff_list() -> list[StaffUser]:
    """Active staff first, then by email."""
    return db.session.scalars(
        select(StaffUser).order_by(StaffUser.is_active.desc(), StaffUser.email).limit(MAX_LISTED)
    ).all()


def staff_member(staff_id: int) -> StaffUser | None:
    return db.session.get(StaffUser, staff_id)


def api_client_list() -> list[ApiClient]:
    """Active clients first, then by name."""
    return db.session.scalars(
        select(ApiClient).order_by(ApiClient.is_active.desc(), ApiClient.name).limit(MAX_LISTED)
    ).all()
