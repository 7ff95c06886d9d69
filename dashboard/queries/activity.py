"""The stock ledger across products, filtered and keyset-paginated (newest first)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import MOVEMENT_KINDS, ApiClient, Product, StaffUser, StockMovement
from .params import whole_number_or_none
from .search import matching_product_ids

PAGE_SIZE = 50
EXPORT_BATCH = 1000
# An export covers at most this many days (the last ones, when no dates are chosen) and
# rows: a full ledger at 100k products is 31 MB, and two at once stalled every other page.
EXPORT_MAX_DAYS = 31
EXPORT_MAX_ROWS = 100_000
MAX_ACTOR_CHOICES = 500


@dataclass
class ActivityFilters:
    """What the staff member asked for; `errors` names each field that could not be read."""

    sku: str = ""
    actor: str = ""  # "", "system", "staff:<id>" or "api:<id>"
    kind: str = ""
    date_from: str = ""
    date_to: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    _since: datetime | None = None
    _until: datetime | None = None

    @classmethod
    def parse(cls, args, zone: ZoneInfo) -> ActivityFilters:
        f = cls(
            sku=args.get("sku", "").strip()[:100], actor=args.get("actor", "").strip()[:40],
            kind=args.get("kind", "").strip()[:20], date_from=args.get("from", "").strip()[:20],
            date_to=args.get("to", "").strip()[:20],
        )
        if f.kind and f.kind not in MOVEMENT_KINDS:
            f.errors["kind"] = "Choose a kind from the list."
        if f.actor and f.actor != "system" and _actor_id(f.actor) is None:
            f.errors["actor"] = "Choose who from the list."
        start, end = _day(f.date_from), _day(f.date_to)
        if f.date_from and start is None:
            f.errors["from"] = "Enter a date as YYYY-MM-DD."
        if f.date_to and end is None:
            f.errors["to"] = "Enter a date as YYYY-MM-DD."
        if start and end and end < start:
            f.errors["to"] = "The end date is before the start date."
        # Days are the staff member's days: midnight in the display time zone.
        f._since = datetime.combine(start, time(), zone) if start else None
        f._until = datetime.combine(end + timedelta(days=1), time(), zone) if end else None
        return f

    def for_export(self, today: date, zone: ZoneInfo) -> ActivityFilters:
        """These filters with the export's date range: the last EXPORT_MAX_DAYS days when
        no dates are given, from a lone start date on; an error when the range is longer."""
        if self.errors:
            return self
        start, end = _day(self.date_from), _day(self.date_to)
        span = timedelta(days=EXPORT_MAX_DAYS - 1)
        if end is None:
            end = min(today, start + span) if start else today
        if start is None:
            start = end - span
        args = {**self.as_args(), "from": start.isoformat(), "to": end.isoformat()}
        bounded = ActivityFilters.parse(args, zone)
        if not bounded.errors and end - start > span:
            bounded.errors["to"] = (f"An export covers at most {EXPORT_MAX_DAYS} days;"
                                    " choose a shorter range.")
        return bounded

    def as_args(self) -> dict:
        values = {"sku": self.sku, "actor": self.actor, "kind": self.kind,
                  "from": self.date_from, "to": self.date_to}
        return {k: v for k, v in values.items() if v}


def _actor_id(actor: str) -> tuple[str, int] | None:
    kind, _, number = actor.partition(":")
    number = whole_number_or_none(number, max_digits=9)
    return (kind, number) if kind in ("staff", "api") and number is not None else None


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError:
        return None
    return day if day is None or 2000 <= day.year <= 2999 else None


@dataclass
class ActivityPage:
    moves: list[StockMovement]
    next_cursor: int | None
    unknown_sku: bool = False


def _filtered(query, filters: ActivityFilters):
    """`query` (over stock_movements) narrowed by the filters; None when nothing can match
    (an unknown SKU)."""
    if filters.sku:
        # The SKU in any case, or products whose SKU, name, barcode or category has every word.
        products = matching_product_ids(filters.sku)
        if products is None:
            return None
        query = query.where(StockMovement.product_id.in_(products))
    if filters.kind:
        query = query.where(StockMovement.kind == filters.kind)
    if filters.actor == "system":
        query = query.where(StockMovement.actor_staff_id.is_(None),
                            StockMovement.actor_api_client_id.is_(None))
    elif filters.actor:
        kind, actor_id = _actor_id(filters.actor)
        column = StockMovement.actor_staff_id if kind == "staff" else StockMovement.actor_api_client_id
        query = query.where(column == actor_id)
    if filters._since is not None:
        query = query.where(StockMovement.created_at >= filters._since)
    if filters._until is not None:
        query = query.where(StockMovement.created_at < filters._until)
    return query


def _query(filters: ActivityFilters):
    return _filtered(
        select(StockMovement).options(
            joinedload(StockMovement.product),
            joinedload(StockMovement.actor_staff),
            joinedload(StockMovement.actor_api_client),
        ),
        filters,
    )


def ledger_page(filters: ActivityFilters, after: int | None = None,
                page_size: int = PAGE_SIZE) -> ActivityPage:
    query = _query(filters)
    if query is None:
        return ActivityPage([], None, unknown_sku=True)
    if after is not None:
        query = query.where(StockMovement.id < after)
    found = db.session.scalars(
        query.order_by(StockMovement.id.desc()).limit(page_size + 1)
    ).unique().all()
    moves = list(found[:page_size])
    return ActivityPage(moves, moves[-1].id if len(found) > page_size else None)


def export_rows(filters: ActivityFilters, batch: int = EXPORT_BATCH,
                limit: int = EXPORT_MAX_ROWS + 1) -> Iterator[list[tuple]]:
    """The matching ledger rows (at most `limit`) as plain tuples, newest first, a bounded
    keyset batch at a time (for the CSV): columns, not ORM objects, so a long export costs
    little CPU and memory."""
    query = _filtered(
        select(
            StockMovement.id, StockMovement.created_at, Product.sku,
            Product.name.label("product_name"), StockMovement.kind, StockMovement.on_hand_delta,
            StockMovement.reserved_delta, StockMovement.on_hand_after,
            StockMovement.reserved_after, StaffUser.name.label("staff_name"),
            ApiClient.name.label("api_client_name"), StockMovement.reservation_id,
            StockMovement.order_id,
            StockMovement.reason,
        )
        .join(Product, Product.id == StockMovement.product_id)
        .outerjoin(StaffUser, StaffUser.id == StockMovement.actor_staff_id)
        .outerjoin(ApiClient, ApiClient.id == StockMovement.actor_api_client_id),
        filters,
    )
    if query is None:
        return
    after, left = None, limit
    while left > 0:
        page = query if after is None else query.where(StockMovement.id < after)
        size = min(batch, left)
        rows = db.session.execute(page.order_by(StockMovement.id.desc()).limit(size)).all()
        if not rows:
            return
        yield rows
        after, left = rows[-1].id, left - len(rows)
        if len(rows) < size:
            return


def actor_choices() -> list[tuple[str, str]]:
    staff = db.session.execute(
        select(StaffUser.id, StaffUser.name).order_by(StaffUser.name, StaffUser.id)
        .limit(MAX_ACTOR_CHOICES)
    ).all()
    clients = db.session.execute(
        select(ApiClient.id, ApiClient.name).order_by(ApiClient.name).limit(MAX_ACTOR_CHOICES)
    ).all()
    return ([("system", "The system (scheduler, expiry)")]
            + [(f"staff:{i}", name) for i, name in staff]
            + [(f"api:{i}", f"API client {name}") for i, name in clients])
