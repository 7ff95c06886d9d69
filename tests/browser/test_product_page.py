"""Journeys in real Chromium on the product page (issue 14): adjust and count there, the
chart's ranges, markers and readout, and a submit after the session ended elsewhere."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, StockMovement
from tests.helpers.web import sign_in_page

pytestmark = pytest.mark.browser


def _on_hand(sku: str) -> int:
    """Read fresh, then let go: on SQLite even a read holds the write lock the server needs."""
    db.session.rollback()
    value = db.session.scalars(select(Product.on_hand).where(Product.sku == sku)).one()
    db.session.rollback()
    return value


def _last_move() -> int:
    value = db.session.scalar(select(StockMovement.id).order_by(StockMovement.id.desc()).limit(1))
    db.session.rollback()
    return value


def test_merchandiser_adjusts_and_counts_on_the_product_page(
        live_server, chromium, staff_factory, product_factory, now):
    email = staff_factory("merchandiser", email="mia@example.com").email
    product = product_factory("MUG-RED", name="Red mug", on_hand=12, threshold=3)
    product_id = product.id
    db.session.rollback()

    page = sign_in_page(chromium, live_server, email)
    page.goto(live_server + "/products/MUG-RED")
    change = page.locator("#change-stock")
    change.get_by_label("Change").fill("5")
    change.get_by_label("Reason").fill("delivery")
    change.get_by_role("button", name="Adjust").click()
    page.locator(".flash", has_text="MUG-RED: on hand 12 → 17 (+5).").wait_for()
    assert _on_hand("MUG-RED") == 17
    assert page.locator(".tile-figure").first.inner_text() == "17"

    # Another tab changes the stock; this page's count is refused as stale, input kept.
    services.adjust(product_id, -2, reason="another tab", actor=services.SYSTEM, now=now)
    db.session.commit()
    change = page.locator("#change-stock")
    change.get_by_label("Counted").fill("9")
    change.get_by_role("button", name="Save count").click()
    page.locator("p.flash-error", has_text="on hand is now 15, not 17").wait_for()
    assert page.locator("#change-stock").get_by_label("Counted").input_value() == "9"
    assert _on_hand("MUG-RED") == 15
    # Saving again confirms the count over the new figure.
    page.locator("#change-stock").get_by_role("button", name="Save count").click()
    page.locator(".flash", has_text="MUG-RED: counted 9").wait_for()
    assert _on_hand("MUG-RED") == 9


def test_chart_ranges_markers_and_readout(live_server, chromium, staff_factory, product_factory):
    email = staff_factory("viewer", email="vera@example.com").email
    product = product_factory("MUG-RED", name="Red mug", on_hand=12, threshold=3)
    live = datetime.now(timezone.utc)
    for minutes, delta in ((50, -1), (40, -2), (30, 4)):
        services.adjust(product.id, delta, reason="today", actor=services.SYSTEM,
                        now=live - timedelta(minutes=minutes))
    db.session.commit()

    page = sign_in_page(chromium, live_server, email)
    page.goto(live_server + "/products/MUG-RED")
    page.get_by_role("navigation", name="Chart time range").get_by_role("link", name="24 h").click()
    page.wait_for_url("**range=24h**")
    markers = page.locator("svg circle.marker")
    assert markers.count() == 3
    # Today's changes are spread across the 24 h axis, not stacked at its right edge.
    xs = [float(markers.nth(i).get_attribute("cx")) for i in range(3)]
    assert xs[0] < xs[1] < xs[2]
    # Available is drawn, on top, in its own style.
    available = page.locator("polyline.line-available")
    assert available.evaluate("e => getComputedStyle(e).strokeDasharray") not in ("none", "")
    assert available.evaluate("e => getComputedStyle(e).stroke") != page.locator(
        "polyline.line-on-hand").evaluate("e => getComputedStyle(e).stroke")

    readout = page.locator("#chart-readout")
    assert readout.inner_text().startswith("Now: on hand 13")
    markers.nth(1).focus()
    assert "adjust (on hand -2). On hand 9, reserved 0, available 9." in readout.inner_text()
    markers.nth(2).hover()
    assert "On hand 13" in readout.inner_text()
    page.locator("summary", has_text="as a table").click()
    assert page.locator(".chart-table tbody tr").count() == 3


def test_a_submit_after_sign_out_elsewhere_keeps_what_was_typed(
        live_server, chromium, staff_factory, product_factory):
    user = staff_factory("merchandiser", email="mia@example.com")
    product_factory("MUG-RED", name="Red mug", on_hand=12, threshold=3)
    user_id, email = user.id, user.email
    db.session.rollback()

    page = sign_in_page(chromium, live_server, email)
    page.goto(live_server + "/products/MUG-RED")
    change = page.locator("#change-stock")
    change.get_by_label("Change").fill("-3")
    change.get_by_label("Reason").fill("dropped by the courier")

    services.end_sessions(user_id)  # an admin signs the merchandiser out everywhere
    db.session.commit()
    change.get_by_role("button", name="Adjust").click()

    page.wait_for_url("**/sign-in?**")
    assert "Your session was ended elsewhere" in page.locator("main").inner_text()
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct-horse-1")
    page.click("button[type=submit]")

    page.wait_for_url(live_server + "/products/MUG-RED")
    page.locator("[data-restore-drafts]", has_text="back in the form").wait_for()
    change = page.locator("#change-stock")
    assert change.get_by_label("Change").input_value() == "-3"
    assert change.get_by_label("Reason").input_value() == "dropped by the courier"
    assert _on_hand("MUG-RED") == 12  # nothing was resent by itself
    moves = _last_move()

    change.get_by_role("button", name="Adjust").click()  # the staff member checks and sends
    page.locator(".flash", has_text="MUG-RED: on hand 12 → 9").wait_for()
    assert _on_hand("MUG-RED") == 9
    assert _last_move() > moves
