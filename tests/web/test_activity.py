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


def test_product_filter_finds_skus_in_any_case_and_products_by_name(viewer, product_factory):
    product_factory(sku="STA-103-BLUE", name="Stapler blue", on_hand=5)
    product_factory(sku="STA-103-RED", name="Stapler red", on_hand=5)
    product_factory(sku="SCK-1", name="Merino sock grey", on_hand=5)

    def shown(term):
        page = viewer.get("/activity", query_string={"sku": term}, headers=HX).get_data(as_text=True)
        return sorted(set(re.findall(r">(STA-103-\w+|SCK-1)<", page)))

    assert shown("sta-103-blue") == ["STA-103-BLUE"]
    assert shown("STA-103") == ["STA-103-BLUE", "STA-103-RED"]
    assert shown("sock merino") == ["SCK-1"]


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
    day = now.date().isoformat()
    response = viewer.get(f"/activity.csv?sku==CSV-1&from={day}&to={day}")
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


def _export(viewer, query: str):
    response = viewer.get("/activity.csv" + query)
    return response, response.get_data(as_text=True)


def test_an_export_without_dates_covers_the_last_31_days(viewer, product_factory):
    from datetime import datetime, timezone

    today = datetime.now(timezone.utc)
    product = product_factory(sku="RECENT-1", on_hand=5)
    services.adjust(product, 1, reason="today", actor=SYSTEM, now=today)
    services.adjust(product, 1, reason="long ago", actor=SYSTEM, now=today - timedelta(days=40))
    response, body = _export(viewer, "")
    assert response.status_code == 200
    first = (today - timedelta(days=30)).date().isoformat()
    assert first in response.headers["Content-Disposition"]
    assert "today" in body and "long ago" not in body


def test_an_export_of_more_than_31_days_is_refused(viewer):
    response, body = _export(viewer, "?from=2026-01-01&to=2026-03-01")
    assert response.status_code == 422 and "at most 31 days" in body


def test_an_export_from_a_start_date_runs_31_days(viewer, product_factory):
    from datetime import datetime, timezone

    start = datetime.now(timezone.utc) - timedelta(days=60)
    product = product_factory(sku="OLD-1", on_hand=5)
    services.adjust(product, 1, reason="in range", actor=SYSTEM, now=start + timedelta(days=30))
    services.adjust(product, 1, reason="beyond", actor=SYSTEM, now=start + timedelta(days=32))
    response, body = _export(viewer, f"?from={start.date().isoformat()}")
    assert response.status_code == 200 and "in range" in body and "beyond" not in body


def test_an_export_over_the_row_cap_says_so_on_its_last_line(viewer, product_factory, now,
                                                             monkeypatch):
    from dashboard.web import activity

    monkeypatch.setattr(activity, "EXPORT_MAX_ROWS", 5)
    product = product_factory(sku="CAP-1", on_hand=100)
    for _ in range(7):
        services.adjust(product, 1, reason="ok", actor=SYSTEM, now=now)
    day = now.date().isoformat()
    _, body = _export(viewer, f"?sku=CAP-1&from={day}&to={day}")
    lines = body.strip().splitlines()
    assert len(lines) == 1 + 5 + 1 and lines[-1].startswith("# cut at 5 rows")
    _, whole = _export(viewer, f"?sku=CAP-1&from={day}&to={day}&kind=receive")
    assert "cut at" not in whole


def test_only_one_export_runs_at_a_time(viewer, product_factory, now):
    product_factory(sku="ONE-1")
    day = now.date().isoformat()
    first = viewer.get(f"/activity.csv?from={day}&to={day}")  # streamed, not yet read
    second, body = _export(viewer, f"?from={day}&to={day}")
    assert second.status_code == 429 and second.headers["Retry-After"]
    assert "Another activity export is running" in body
    first.get_data()
    first.close()
    third, _ = _export(viewer, f"?from={day}&to={day}")
    assert third.status_code == 200


def test_the_page_says_how_exports_are_bounded(viewer, product_factory):
    product_factory(sku="ANY-1", on_hand=1)
    body = viewer.get("/activity").get_data(as_text=True)
    assert "At most 31 days" in body and "100,000 rows" in body
