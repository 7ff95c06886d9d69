"""Who hears about what by mail: each staff member's categories (or all) and whether mails
come as they happen ("immediate") or once a day ("digest").

Without a saved choice, managers get a digest of everything and everyone else nothing
(issue 16), so a new manager is told without anyone setting it up.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import SUBSCRIPTION_MODES, NotificationSubscription, StaffUser
from .errors import InvalidInput, NotFound
from .transaction import transactional

MAX_CATEGORIES = 200


@dataclass(frozen=True)
class Subscription:
    staff_id: int
    email: str
    name: str
    role: str
    mode: str  # off | immediate | digest
    categories: tuple[str, ...] | None  # None: every product
    chosen: bool  # False: the role's default

    def covers(self, category: str | None) -> bool:
        return self.categories is None or (category is not None and category in self.categories)


def default_mode(role: str) -> str:
    return "digest" if role == "manager" else "off"


def subscriptions(staff_id: int | None = None) -> list[Subscription]:
    """Every active staff member's subscription (or one member's), saved or by default."""
    query = (
        select(StaffUser.id, StaffUser.email, StaffUser.name, StaffUser.role,
               NotificationSubscription.mode, NotificationSubscription.categories)
        .outerjoin(NotificationSubscription, NotificationSubscription.staff_id == StaffUser.id)
        .where(StaffUser.is_active)
        .order_by(StaffUser.name, StaffUser.id)
    )
    if staff_id is not None:
        query = query.where(StaffUser.id == staff_id)
    return [
        Subscription(sid, email, name, role, mode or default_mode(role),
                     tuple(json.loads(categories)) if categories is not None else None,
                     chosen=mode is not None)
        for sid, email, name, role, mode, categories in db.session.execute(query)
    ]


def subscription_of(staff_id: int) -> Subscription:
    found = subscriptions(staff_id)
    if not found:
        raise NotFound(f"staff member {staff_id} does not exist or is deactivated")
    return found[0]


@transactional
def choose(staff_id: int, mode: str, categories: list[str] | None, *, now: datetime) -> None:
    """Save a staff member's choice; `categories` None means every product."""
    if mode not in SUBSCRIPTION_MODES:
        raise InvalidInput(f"choose one of {', '.join(SUBSCRIPTION_MODES)}", field="mode")
    if categories is not None:
        categories = sorted({c.strip() for c in categories if isinstance(c, str) and c.strip()})
        if not categories and mode != "off":
            raise InvalidInput("choose at least one category, or all products",
                               field="categories")
        if len(categories) > MAX_CATEGORIES or any(len(c) > 100 for c in categories):
            raise InvalidInput(f"choose at most {MAX_CATEGORIES} categories of up to 100"
                               " characters", field="categories")
    row = db.session.get(NotificationSubscription, staff_id, with_for_update=True)
    if row is None:
        if db.session.get(StaffUser, staff_id) is None:
            raise NotFound(f"staff member {staff_id} does not exist")
        row = NotificationSubscription(staff_id=staff_id)
        db.session.add(row)
    row.mode, row.updated_at = mode, now
    row.categories = json.dumps(categories) if categories is not None else None
