"""Activity (SPEC §6): the stock ledger across all products, with a streamed CSV export
bounded in days and rows, one export at a time per process."""
from __future__ import annotations

import csv
import io
import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, stream_with_context
from flask_login import login_required

from ..models import MOVEMENT_KINDS, actor_label
from ..queries.activity import (
    EXPORT_MAX_DAYS,
    EXPORT_MAX_ROWS,
    ActivityFilters,
    actor_choices,
    export_rows,
    ledger_page,
)
from ..queries.params import whole_number_or_none
from .htmx import page

bp = Blueprint("activity", __name__)

CSV_COLUMNS = (
    "id", "time_utc", "sku", "product", "kind", "on_hand_delta", "reserved_delta",
    "on_hand_after", "reserved_after", "available_after", "actor", "hold_id", "order_id", "reason",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _filters() -> ActivityFilters:
    return ActivityFilters.parse(request.args, ZoneInfo(current_app.config["DISPLAY_TIMEZONE"]))


def _cursor() -> int | None:
    return whole_number_or_none(request.args.get("after"))


@bp.get("/activity")
@login_required
def index():
    filters = _filters()
    after = _cursor()
    result = None if filters.errors else ledger_page(filters, after)
    return page(
        "activity/index.html", "activity/_results.html", status=422 if filters.errors else 200,
        filters=filters, result=result, after=after, kinds=MOVEMENT_KINDS,
        actors=actor_choices(), export_days=EXPORT_MAX_DAYS, export_rows=EXPORT_MAX_ROWS,
    )


def _text(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


@bp.get("/activity.csv")
@login_required
def export():
    zone = ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])
    filters = _filters().for_export(datetime.now(zone).date(), zone)
    if filters.errors:
        message = " ".join(f"{name}: {why}" for name, why in filters.errors.items())
        return Response(message + "\n", status=422, mimetype="text/plain")
    # One export at a time in this process: two at once starved every other page.
    if not _exporting.acquire(blocking=False):
        response = Response("Another activity export is running; try again in a minute.\n",
                            status=429, mimetype="text/plain")
        response.headers["Retry-After"] = "30"
        return response

    def rows():
        try:
            yield from _csv(filters)
        finally:  # also when the download is abandoned: the generator is closed
            _exporting.release()

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="stock-activity-{filters.date_from}-to-{filters.date_to}'
        f'-{stamp}.csv"')
    return response


_exporting = threading.Lock()


def _csv(filters):
    """The CSV text, a batch at a time; a last line says so when the row cap cut it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    written = fetched = 0
    for batch in export_rows(filters, limit=EXPORT_MAX_ROWS + 1):
        fetched += len(batch)
        batch = batch[:EXPORT_MAX_ROWS - written]  # the row past the cap only says "more"
        written += len(batch)
        writer.writerows(
            (m.id, m.created_at.isoformat(), _text(m.sku), _text(m.product_name), m.kind,
             m.on_hand_delta, m.reserved_delta, m.on_hand_after, m.reserved_after,
             m.on_hand_after - m.reserved_after,
             _text(actor_label(m.staff_name, m.api_client_name)),
             m.reservation_id or "", m.order_id or "", _text(m.reason))
            for m in batch
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if fetched > EXPORT_MAX_ROWS:
        writer.writerow([f"# cut at {EXPORT_MAX_ROWS:,} rows: choose fewer days or"
                         " narrower filters for the rest"])
    yield buffer.getvalue()
