"""Alerts by tab (open / acknowledged / resolved), newest first, keyset-paginated."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import contains_eager, joinedload

from ..extensions import db
from ..models import StockAlert
from . import cursor

PAGE_SIZE = 50


@dataclass
class AlertPage:
    alerts: list[StockAlert]
    next_cursor: str | None


def _with_people(query):
    return query.join(StockAlert.product).options(
        contains_eager(StockAlert.product),
        joinedload(StockAlert.acknowledged_by),
        joinedload(StockAlert.resolved_by),
    )


def alerts_page(tab: str, kind: str | None, after: str | None = None,
                page_size: int = PAGE_SIZE) -> AlertPage:
    """Newest first by when the alert was raised (the (status, opened_at, id) index)."""
    query = _with_people(select(StockAlert)).where(StockAlert.status == tab)
    if kind:
        query = query.where(StockAlert.kind == kind)
    position = cursor.decode(after, datetime)
    if position is not None:
        when, alert_id = position
        # A row comparison, so the index range starts at the cursor however deep the page.
        query = query.where(tuple_(StockAlert.opened_at, StockAlert.id) < tuple_(when, alert_id))
    found = db.session.scalars(
        query.order_by(StockAlert.opened_at.desc(), StockAlert.id.desc()).limit(page_size + 1)
    ).unique().all()
    alerts = list(found[:page_size])
    if len(found) <= page_size:
        return AlertPage(alerts, None)
    return AlertPage(alerts, cursor.encode(alerts[-1].opened_at, alerts[-1].id))


def unresolved_counts() -> dict[str, int]:
    """Open and acknowledged counts for the tab labels (resolved grows forever: not counted)."""
    rows = db.session.execute(
        select(StockAlert.status, func.count())
        .where(StockAlert.status.in_(("open", "acknowledged")))
        .group_by(StockAlert.status)
    ).all()
    return {"open": 0, "acknowledged": 0, **dict(rows)}


def one_alert(alert_id: int) -> StockAlert | None:
    return db.session.scalars(
        _with_people(select(StockAlert)).where(StockAlert.id == alert_id)
    ).unique().first()



def open_count() -> int:
    """How many alerts are open, for the navigation's badge."""
    return db.session.scalar(
        select(func.count()).select_from(StockAlert).where(StockAlert.status == "open")
    ) or 0
