"""Activity (SPEC §6): the stock ledger across all products, with a streamed CSV export."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, stream_with_context
from flask_login import login_required

from ..models import MOVEMENT_KINDS, actor_label
from ..queries.activity import (
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
        actors=actor_choices(),
    )


def _text(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


@bp.get("/activity.csv")
@login_required
def export():
    filters = _filters()
    if filters.errors:
        message = " ".join(f"{name}: {why}" for name, why in filters.errors.items())
        return Response(message + "\n", status=422, mimetype="text/plain")

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for batch in export_rows(filters):
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
        if buffer.tell():
            yield buffer.getvalue()

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="stock-activity-{stamp}.csv"'
    return response
