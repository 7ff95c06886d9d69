"""Staff members and API clients as the admin pages (and the session loader) read them."""
from __future__ import annotations

from ..extensions import db
from ..models import StaffUser


def staff_member(staff_id: int) -> StaffUser | None:
    return db.session.get(StaffUser, staff_id)
