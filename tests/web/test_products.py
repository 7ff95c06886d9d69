"""The product page: figures, chart from the ledger, paginated ledger, holds, alerts, settings."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, StockAlert, StockMovement
from dashboard.services import Owner
from dashboard.queries.products import LEDGER_PAGE
from tests.helpers.records import high_street_store, level_at
from tests.helpers.web import HX, login


def fresh(product_id: int) -> Product:
    db.session.expire_all()
    return db.session.get(Product, product_id)


def test_product_page_shows_figures_chart_ledger_holds_alerts(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", name="Red <mug>", on_hand=10, threshold=4)
    services.adjust(product.id, -3, reason="dropped", actor=services.Actor.staff(merchandiser), now=now)
    services.reserve(product.sku, 4, Owner(cart_id=None, session_key="sess-9"), now=now)
    body = client.get("/products/RED-1").get_data(as_text=True)
    assert "<html" in body and "Red &lt;mug&gt;" in body
    figures = re.findall(r'<span class="tile-figure">([\d,]+)</span>', body)
    assert figures == ["7", "4", "3", "4"]
    assert "<svg" in body and body.count("<polyline") == 3 and 'role="group"' in body
    assert "dropped" in body and merchandiser.name in body and "system" in body  # actors
    assert "session sess-9" in body and "Active holds <span class=\"muted\">(1)</span>" in body
    assert "Alert history" in body and "badge-low" in body


def test_chart_is_drawn_from_the_ledger_as_step_lines(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 10, reason="delivery", actor=services.SYSTEM, now=now)
    body = client.get("/products/RED-1?range=all").get_data(as_text=True)
    on_hand = re.search(r'<polyline class="line-on-hand" points="([^"]+)"', body).group(1).split()
    ys = [float(p.split(",")[1]) for p in on_hand]
    # 10 units, then 20 (the top of the chart), held until now: two levels, a vertical step.
    assert len(set(ys)) == 2 and min(ys) == 12.0


def _markers(body: str) -> list[str]:
    return re.findall(r'<circle class="marker"[^>]* tabindex="0" role="img" aria-label="([^"]+)"', body)


def test_chart_range_chooser_shows_only_changes_in_the_range(client, merchandiser, product_factory):
    live = datetime.now(timezone.utc)
    product = product_factory("RED-1", on_hand=10)  # opening stock at the fixed test time, weeks ago
    services.adjust(product.id, 5, reason="delivery", actor=services.SYSTEM, now=live - timedelta(days=3))
    services.adjust(product.id, -2, reason="damaged", actor=services.SYSTEM, now=live - timedelta(hours=2))
    services.reserve(product.sku, 4, Owner(session_key="s"), now=live - timedelta(hours=1))

    day = client.get("/products/RED-1?range=24h").get_data(as_text=True)
    assert 'aria-current="true">24 h</a>' in day
    assert len(_markers(day)) == 2  # the damage and the hold; the level before opens the line
    assert _markers(day)[0].endswith("adjust (on hand -2). On hand 13, reserved 0, available 13.")
    assert _markers(day)[1].endswith("reserve (reserved +4). On hand 13, reserved 4, available 9.")
    assert 'data-readout="' in day and "Now: on hand 13, reserved 4, available 9." in day
    assert "The 2 changes as a table" in day

    assert len(_markers(client.get("/products/RED-1").get_data(as_text=True))) == 3  # 7 d
    assert len(_markers(client.get("/products/RED-1?range=all").get_data(as_text=True))) == 4
    assert 'aria-current="true">7 d</a>' in client.get("/products/RED-1?range=bogus").get_data(as_text=True)


def test_chart_draws_available_apart_from_on_hand(client, merchandiser, product_factory, now):
    product_factory("RED-1", on_hand=10)
    body = client.get("/products/RED-1?range=all").get_data(as_text=True)
    lines = re.findall(r'<polyline class="(line-[a-z-]+)"', body)
    assert lines == ["line-on-hand", "line-reserved", "line-available"]  # available drawn on top
    assert "Available (green, dotted" in body


def test_chart_of_a_quiet_range_holds_the_level_from_before(client, merchandiser, product_factory):
    product_factory("RED-1", on_hand=10)  # weeks ago
    body = client.get("/products/RED-1?range=24h").get_data(as_text=True)
    assert _markers(body) == [] and "No changes in this range" in body
    assert re.search(r'<polyline class="line-on-hand" points="52,12.0 784.0,12.0"', body)


# --- adjust and count on the product page ---------------------------------------------------

def test_product_page_adjusts_and_counts_through_the_stock_views(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    body = client.get("/products/RED-1").get_data(as_text=True)
    assert f'action="/stock/{product.id}/adjust"' in body and f'action="/stock/{product.id}/count"' in body
    assert 'name="next" value="/products/RED-1"' in body and 'name="expected" value="10"' in body

    adjusted = client.post(f"/stock/{product.id}/adjust", data={
        "delta": "5", "reason": "delivery", "next": "/products/RED-1", "from": "product"})
    assert adjusted.status_code == 302 and adjusted.headers["Location"] == "/products/RED-1"
    page = client.get("/products/RED-1").get_data(as_text=True)
    assert "RED-1: on hand 10 → 15 (+5)." in page and 'name="expected" value="15"' in page

    counted = client.post(f"/stock/{product.id}/count", data={
        "counted": "12", "expected": "15", "next": "/products/RED-1", "from": "product"})
    assert counted.status_code == 302 and fresh(product.id).on_hand == 12


def test_a_stale_count_on_the_product_page_is_refused_there_with_the_input_kept(
        client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 5, reason="another tab", actor=services.SYSTEM, now=now)
    moves = db.session.scalar(select(func.count()).select_from(StockMovement))
    refused = client.post(f"/stock/{product.id}/count", data={
        "counted": "8", "expected": "10", "note": "shelf", "next": "/products/RED-1", "from": "product"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "<h2 id=\"chart-h\">Stock over time</h2>" in body
    assert "on hand is now 15, not 10" in body
    assert 'name="counted" required step="1" type="number" value="8"' in body and 'value="shelf"' in body
    assert 'name="expected" value="15"' in body  # saving again confirms the count over the new figure
    assert fresh(product.id).on_hand == 15
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == moves


def test_a_reason_over_500_characters_is_refused_with_its_length(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    refused = client.post(f"/stock/{product.id}/adjust", data={
        "delta": "1", "reason": "x" * 600, "next": "/products/RED-1", "from": "product"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "is 600 characters long; keep it to 500" in body
    assert 'aria-invalid="true"' in body and fresh(product.id).on_hand == 10


def test_an_unbroken_500_character_reason_is_shown_whole(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 1, reason="y" * 500, actor=services.SYSTEM, now=now)
    assert "y" * 500 in client.get("/products/RED-1").get_data(as_text=True)


def test_viewer_gets_no_adjust_or_count_on_the_product_page(client, staff_factory, product_factory):
    product_factory("RED-1", on_hand=10)
    login(client, staff_factory("viewer"))
    assert "Save count" not in client.get("/products/RED-1").get_data(as_text=True)


def test_product_without_history_says_so(client, merchandiser, product_factory):
    product_factory("NEW-1", on_hand=0)
    body = client.get("/products/NEW-1").get_data(as_text=True)
    assert "No history yet" in body and "No stock changes recorded yet" in body


def test_ledger_is_paginated_most_recent_first(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=1000)
    for n in range(LEDGER_PAGE + 5):
        services.adjust(product.id, 1, reason=f"step {n:02d}", actor=services.SYSTEM, now=now)
    first = client.get("/products/RED-1").get_data(as_text=True)
    reasons = re.findall(r"<td>(step \d\d|opening stock)", first)
    assert reasons[0] == f"step {LEDGER_PAGE + 4:02d}" and len(reasons) == LEDGER_PAGE
    older = re.search(r'hx-get="(/products/RED-1\?before=\d+)"', first).group(1)
    partial = client.get(older, headers=HX).get_data(as_text=True)
    assert "<html" not in partial and partial.lstrip().startswith('<div id="ledger">')
    rest = re.findall(r"<td>(step \d\d|opening stock)", partial)
    assert rest == [f"step {n:02d}" for n in range(4, -1, -1)] + ["opening stock"]
    assert "Older changes" not in partial and "Most recent" in partial
    # The older page is also a full page for a normal link.
    assert "<html" in client.get(older).get_data(as_text=True)


def test_unknown_and_odd_skus_are_404(client, merchandiser):
    response = client.get("/products/NOPE")
    body = response.get_data(as_text=True)
    assert response.status_code == 404 and "<h1>Not found</h1>" in body and "No product has the SKU NOPE." in body
    assert client.get("/products/" + "x" * 300).status_code == 404
    assert client.get("/products/bad%00sku").status_code == 400  # NUL: refused when read


def test_skus_with_slashes_have_a_page(client, merchandiser, product_factory):
    product_factory("BOX/12", on_hand=3)
    assert client.get("/products/BOX/12").status_code == 200
    response = client.post("/products/BOX/12/settings", data={"threshold": "7", "is_active": "y"})
    assert response.status_code == 302 and response.headers["Location"] == "/products/BOX%2F12"


def test_settings_change_threshold_and_reevaluate_alerts(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10, threshold=2)
    response = client.post("/products/RED-1/settings", data={"threshold": "12", "is_active": "y"})
    assert response.status_code == 302
    assert fresh(product.id).low_stock_threshold == 12
    alert = db.session.scalars(select(StockAlert).where(StockAlert.product_id == product.id)).one()
    assert alert.kind == "LOW_STOCK" and alert.status == "open"
    assert "RED-1: threshold 12, active." in client.get("/products/RED-1").get_data(as_text=True)


def test_settings_deactivate(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    client.post("/products/RED-1/settings", data={"threshold": "2"})  # unticked box: inactive
    assert fresh(product.id).is_active is False


@pytest.mark.parametrize("threshold", ["-1", "abc", "", str(2**31), str(2**63), "1.5", "<b>3</b>"])
def test_hostile_settings_are_form_errors_and_change_nothing(client, merchandiser, product_factory, threshold):
    product = product_factory("RED-1", on_hand=10, threshold=2)
    moves = db.session.scalar(select(func.count()).select_from(StockMovement))
    response = client.post("/products/RED-1/settings", data={"threshold": threshold, "is_active": "y"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and 'aria-invalid="true"' in body and "<b>3</b>" not in body
    assert fresh(product.id).low_stock_threshold == 2 and fresh(product.id).is_active
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == moves


def test_viewer_sees_settings_but_cannot_change_them(client, staff_factory, product_factory):
    product = product_factory("RED-1", on_hand=10, threshold=2)
    login(client, staff_factory("viewer"))
    body = client.get("/products/RED-1").get_data(as_text=True)
    assert "Save settings" not in body and "Only merchandisers, managers and admins" in body
    response = client.post("/products/RED-1/settings", data={"threshold": "9", "is_active": "y"})
    assert response.status_code == 403 and fresh(product.id).low_stock_threshold == 2


def test_a_sku_with_slashes_and_dots_links_to_its_own_page(client, merchandiser, now):
    from dashboard.services import SYSTEM

    services.create_product("X/..%2F/A B", "Tricky", actor=SYSTEM, now=now)
    body = client.get("/stock").get_data(as_text=True)
    assert 'href="/products/X%2F..%252F%2FA%20B"' in body
    page = client.get("/products/X%2F..%252F%2FA%20B")
    assert page.status_code == 200 and "Tricky" in page.get_data(as_text=True)


def test_the_success_message_says_when_an_alert_opened_or_resolved(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10, threshold=4)
    client.post(f"/stock/{product.id}/adjust", data={"delta": "-7", "reason": "broken", "next": "/products/RED-1"})
    assert "RED-1: on hand 10 → 3 (−7). Low stock alert opened." in client.get("/products/RED-1").get_data(as_text=True)
    client.post(f"/stock/{product.id}/count", data={"counted": "0", "expected": "3", "next": "/products/RED-1"})
    assert "RED-1: counted 0 (−3). Out of stock alert opened." in client.get("/products/RED-1").get_data(as_text=True)
    client.post(f"/stock/{product.id}/adjust", data={"delta": "20", "reason": "delivery", "next": "/products/RED-1"})
    assert "(+20). Its alert was resolved." in client.get("/products/RED-1").get_data(as_text=True)


# --- per location -----------------------------------------------------------------------------

def test_one_location_page_has_no_location_table(client, merchandiser, product_factory):
    product_factory("RED-1", on_hand=10)
    body = client.get("/products/RED-1").get_data(as_text=True)
    assert "Stock by location" not in body and 'name="location"' not in body


def test_product_page_has_a_row_per_location_with_its_forms(client, merchandiser, product_factory, now):
    high_street_store(now)
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 4, reason="delivery", location="STORE-1", actor=services.SYSTEM, now=now)
    services.reserve(product.sku, 1, Owner(session_key="s1"), now=now, location="STORE-1")
    body = client.get("/products/RED-1").get_data(as_text=True)
    row = re.search(r'<tr id="level-STORE-1">.*?</tr>', body, re.S).group(0)
    assert "High Street store" in row
    assert re.findall(r'<td class="num">([\d,]+)</td>', row) == ["4", "1", "3"]
    assert row.count('name="location" value="STORE-1"') == 2 and 'name="expected" value="4"' in row
    assert 'href="/transfers/new?sku=RED-1&amp;source=STORE-1"' in row
    assert re.search(r'<td class="num">\d+</td><td>STORE-1</td><td class="num">1</td>', body)  # the hold
    main = re.search(r'<tr id="level-MAIN">.*?</tr>', body, re.S).group(0)
    assert 'name="expected" value="10"' in main


def test_adjust_and_count_at_a_location_change_only_that_level(client, merchandiser, product_factory, now):
    high_street_store(now)
    product = product_factory("RED-1", on_hand=10)
    adjusted = client.post(f"/stock/{product.id}/adjust", data={
        "delta": "5", "reason": "delivery", "location": "STORE-1", "next": "/products/RED-1", "from": "product"})
    assert adjusted.status_code == 302
    assert "RED-1: on hand at STORE-1 0 → 5 (+5)." in client.get("/products/RED-1").get_data(as_text=True)
    counted = client.post(f"/stock/{product.id}/count", data={
        "counted": "3", "expected": "5", "location": "STORE-1", "next": "/products/RED-1", "from": "product"})
    assert counted.status_code == 302
    assert level_at(product.id, "STORE-1").on_hand == 3 and level_at(product.id, "STORE-1").last_stock_check
    assert level_at(product.id, "MAIN").on_hand == 10 and fresh(product.id).on_hand == 13


def test_a_stale_count_at_a_location_is_refused_in_its_row(client, merchandiser, product_factory, now):
    high_street_store(now)
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 2, reason="other tab", location="STORE-1", actor=services.SYSTEM, now=now)
    # MAIN's figure is unchanged: a count there against 10 is not stale.
    refused = client.post(f"/stock/{product.id}/count", data={
        "counted": "1", "expected": "0", "note": "shelf", "location": "STORE-1",
        "next": "/products/RED-1", "from": "product"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "on hand at STORE-1 is now 2, not 0" in body
    row = re.search(r'<tr id="level-STORE-1">.*?</tr>', body, re.S).group(0)
    assert 'name="expected" value="2"' in row and 'value="shelf"' in row and 'value="1"' in row
    assert level_at(product.id, "STORE-1").on_hand == 2


def test_removing_held_units_at_a_location_names_it(client, merchandiser, product_factory, now):
    high_street_store(now)
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 2, reason="delivery", location="STORE-1", actor=services.SYSTEM, now=now)
    services.reserve(product.sku, 2, Owner(session_key="s1"), now=now, location="STORE-1")
    refused = client.post(f"/stock/{product.id}/adjust", data={
        "delta": "-1", "reason": "broken", "location": "STORE-1", "next": "/products/RED-1", "from": "product"})
    assert refused.status_code == 409 and "held at STORE-1" in refused.get_data(as_text=True)
    unknown = client.post(f"/stock/{product.id}/adjust", data={
        "delta": "1", "reason": "x", "location": "NOWHERE", "next": "/products/RED-1", "from": "product"})
    assert unknown.status_code == 422 and "NOWHERE" in unknown.get_data(as_text=True)
    assert fresh(product.id).on_hand == 12


def test_viewer_sees_the_location_table_without_forms(client, staff_factory, product_factory, now):
    high_street_store(now)
    product_factory("RED-1", on_hand=10)
    login(client, staff_factory("viewer"))
    body = client.get("/products/RED-1").get_data(as_text=True)
    assert '<tr id="level-STORE-1">' in body and "/adjust" not in body and "/transfers/new" not in body
    product = db.session.scalars(select(Product)).one()
    denied = client.post(f"/stock/{product.id}/adjust", data={"delta": "1", "reason": "x", "location": "STORE-1"})
    assert denied.status_code == 403 and fresh(product.id).on_hand == 10
