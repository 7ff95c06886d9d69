"""What a staff member's daily digest says: products that went low or out, those that
recovered (from the notification events of the day), stuck holds now, and the drift the
last reconcile found. Plain values, fixed when the digest is made."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import JobRun, NotificationEvent, Product, Reservation, StaffUser, actor_label
from .holds import stuck_condition

DAY = timedelta(days=1)
MAX_LISTED = 200


def product_path(sku: str) -> str:
    return f"/products/{quote(sku, safe='')}"


def digest(categories: tuple[str, ...] | None, now: datetime) -> dict:
    """The day to `now` for someone following `categories` (None: every product)."""
    since = now - DAY
    resolver = aliased(StaffUser)
    query = (
        select(NotificationEvent.kind, NotificationEvent.level, NotificationEvent.available,
               Product.sku, Product.name, Product.category, resolver.name)
        .join(Product, Product.id == NotificationEvent.product_id)
        .outerjoin(resolver, resolver.id == NotificationEvent.staff_id)
        .where(NotificationEvent.created_at > since, NotificationEvent.created_at <= now,
               NotificationEvent.kind.in_(("alert_opened", "alert_escalated", "alert_resolved")))
        .order_by(NotificationEvent.id)
    )
    if categories is not None:
        query = query.where(Product.category.in_(categories))
    went: dict[str, dict] = {}
    recovered: dict[str, dict] = {}
    for kind, level, available, sku, name, _category, by in db.session.execute(query):
        line = {"sku": sku, "name": name, "level": level, "available": available,
                "url": product_path(sku)}
        if kind == "alert_resolved":
            recovered[sku] = {**line, "by": actor_label(by, None)}
        else:
            went[sku] = line  # the latest state of the day wins (LOW, then OUT)
    stuck = db.session.scalar(
        select(func.count()).select_from(Reservation)
        .where(Reservation.status == "active", stuck_condition(now)))
    last = db.session.execute(
        select(JobRun.detail).where(JobRun.job == "reconcile", JobRun.status == "ok",
                                    JobRun.started_at > since)
        .order_by(JobRun.started_at.desc()).limit(1)).scalar()
    found = json.loads(last) if last else {}
    return {
        "went": list(went.values())[:MAX_LISTED],
        "recovered": list(recovered.values())[:MAX_LISTED],
        "stuck": stuck,
        "drift": found.get("drift", 0),
        "drift_lines": found.get("found", [])[:20],
    }
