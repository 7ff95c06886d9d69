"""Alerts by tab (open / acknowledged / resolved): searched by SKU or name, sorted by severity
(Out before Low) or by when raised, keyset-paginated."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import contains_eager, joinedload

from ..extensions import db
from ..models import Product, StockAlert
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


SORTS = ("severity", "newest", "oldest")  # severity: Out of stock first, then Low; newest first


def default_sort(tab: str) -> str:
    # Resolved alerts grow forever: their list stays on the (status, opened_at, id) index.
    return "newest" if tab == "resolved" else "severity"


def _matching(query, q: str | None):
    """Every word of `q` in the product's SKU or name, in any order and any case."""
    for word in (q or "").split()[:8]:
        word = word.lower()
        query = query.where(or_(func.lower(Product.sku).contains(word, autoescape=True),
                                func.lower(Product.name).contains(word, autoescape=True)))
    return query


def alerts_page(tab: str, kind: str | None, after: str | None = None,
                page_size: int = PAGE_SIZE, *, q: str | None = None,
                sort: str | None = None) -> AlertPage:
    """One page of a tab, keyset-paginated: by severity (Out before Low, then newest first;
    OUT_OF_STOCK sorts after LOW_STOCK, so all three keys run descending), newest or oldest."""
    sort = sort if sort in SORTS else default_sort(tab)
    query = _matching(_with_people(select(StockAlert)).where(StockAlert.status == tab), q)
    if kind:
        query = query.where(StockAlert.kind == kind)
    keys = (StockAlert.opened_at, StockAlert.id)
    position = cursor.decode(after, str if sort == "severity" else datetime)
    if sort == "severity":
        keys = (StockAlert.kind, *keys)
        if position is not None:
            position = _severity_position(*position)
    if position is not None:
        # A row comparison, so the index range starts at the cursor however deep the page.
        if sort == "oldest":
            query = query.where(tuple_(*keys) > tuple_(*position))
        else:
            query = query.where(tuple_(*keys) < tuple_(*position))
    order = [k.asc() for k in keys] if sort == "oldest" else [k.desc() for k in keys]
    found = db.session.scalars(query.order_by(*order).limit(page_size + 1)).unique().all()
    alerts = list(found[:page_size])
    if len(found) <= page_size:
        return AlertPage(alerts, None)
    last = alerts[-1]
    if sort == "severity":
        micros = (last.opened_at - cursor.EPOCH) // cursor.MICROSECOND
        return AlertPage(alerts, cursor.encode(f"{last.kind}|{micros}", last.id))
    return AlertPage(alerts, cursor.encode(last.opened_at, last.id))


def _severity_position(value: str, alert_id: int):
    """(kind, opened_at, id) from a severity cursor's "KIND|microseconds", or None."""
    kind, _, micros = value.partition("|")
    if kind not in ("LOW_STOCK", "OUT_OF_STOCK") or not micros.isdigit() or len(micros) > 18:
        return None
    return kind, cursor.EPOCH + int(micros) * cursor.MICROSECOND, alert_id


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
