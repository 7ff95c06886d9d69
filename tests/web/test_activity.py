"""Activity: the ledger across products, filters, keyset pages and the streamed CSV."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from dashboard import services
from dashboard.services import SYSTEM, Actor, Owner
from tests.helpers.web import HX


@pytest.fixture
def viewer(client_for):
    return client_for("viewer")


def _rows(body: str) -> int:
    return body.count("<tr>") - 1  # minus the header row


def test_activity_full_page_and_partial(viewer, product_factory):
    product_factory(sku="ACT-1", on_hand=5)
    full = viewer.get("/activity")
    assert full.status_code == 200 and b"<html" in full.data and b"ACT-1" in full.data
    part = viewer.get("/activity?sku=ACT-1", headers=HX)
    assert part.status_code == 200 and b"<html" not in part.data and b"ACT-1" in part.data


def test_filters_by_product_actor_kind_and_date(viewer, product_factory, staff_factory, now):
    mug, tee = product_factory(sku="MUG-A", on_hand=5), product_factory(sku="TEE-A", on_hand=5)
    clerk = staff_factory(role="merchandiser", email="clerk@example.com")
    services.adjust(mug, 3, reason="found in back room", actor=Actor.staff(clerk),
                    now=now + timedelta(days=1))
    services.reserve(tee.sku, 1, Owner(session_key="s"), actor=SYSTEM, now=now)

    def body(query):
        response = viewer.get("/activity?" + query, headers=HX)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "MUG-A" in body("sku=MUG-A") and "TEE-A" not in body("sku=MUG-A")
    by_clerk = body(f"actor=staff:{clerk.id}")
    assert "found in back room" in by_clerk and _rows(by_clerk) == 1
    assert _rows(body("kind=reserve")) == 1 and "TEE-A" in body("kind=reserve")
    tomorrow = (now + timedelta(days=1)).date().isoformat()
    assert _rows(body(f"from={tomorrow}&to={tomorrow}")) == 1
    assert "found in back room" not in body("actor=system")
    assert _rows(body("after=%C2%B2")) >= 1  # a mangled cursor starts from the newest
    assert "No product has the SKU" in body("sku=NOPE")


@pytest.mark.parametrize("query", [
    "kind=<script>", "actor=staff:abc", "actor=root", "from=2026-13-45", "to=yesterday",
    "from=2026-11-21&to=2026-11-01", "from=99999-01-01", "actor=staff:%C2%B2",
])
def test_bad_filters_are_shown_as_errors(viewer, query):
    response = viewer.get("/activity?" + query, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'class="error"' in body or "flash-error" in body
    assert "<script>" not in body
    assert viewer.get("/activity.csv?" + query).status_code == 422


def test_pages_are_keyset_newest_first(viewer, product_factory, now):
    product = product_factory(sku="PAGE-1", on_hand=1000)
    for i in range(60):
        services.adjust(product, 1, reason=f"r{i}", actor=SYSTEM, now=now)
    first = viewer.get("/activity", headers=HX).get_data(as_text=True)
    assert _rows(first) == 50 and "r59" in first
    cursor = re.search(r'href="/activity\?after=(\d+)"', first).group(1)
    second = viewer.get(f"/activity?after={cursor}", headers=HX).get_data(as_text=True)
    assert _rows(second) == 11  # 10 adjustments + the opening receive
    assert "r59" not in second and "r0<" in second.replace(" ", "")


def test_csv_export_streams_every_matching_row_safely(viewer, product_factory, now):
    product = product_factory(sku="=CSV-1", on_hand=5000)
    for i in range(1005):  # more than one export batch
        services.adjust(product, 1, reason="=HYPERLINK(\"http://x\")" if i == 0 else "ok",
                        actor=SYSTEM, now=now)
    response = viewer.get("/activity.csv?sku==CSV-1")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1006
    assert all(r["sku"] == "'=CSV-1" for r in rows)  # formula cells defused
    assert rows[-1]["kind"] in ("receive", "adjust") and rows[0]["on_hand_delta"] == "1"
    assert any(r["reason"].startswith("'=HYPERLINK") for r in rows)


def test_empty_ledger_says_what_appears_here(viewer):
    assert "No stock changes yet" in viewer.get("/activity").get_data(as_text=True)
