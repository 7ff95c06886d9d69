"""Journey in real Chromium: a merchandiser counts a product down and sees its alert appear."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Product, StockAlert, StockMovement
from tests.helpers.web import sign_in_page

pytestmark = pytest.mark.browser


def test_merchandiser_counts_a_product_down_and_sees_its_alert(
    live_server, chromium, staff_factory, product_factory
):
    email = staff_factory("merchandiser", email="mia@example.com").email
    product_factory("MUG-RED", name="Red mug", on_hand=12, threshold=3)
    product_factory("MUG-BLUE", name="Blue mug", on_hand=40, threshold=3)
    db.session.rollback()  # SQLite: let the live server take the write lock

    page = sign_in_page(chromium, live_server, email)
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    assert page.locator("#alert-badge").is_hidden()  # no open alerts yet

    page.locator("nav.topnav").get_by_role("link", name="Stock", exact=True).click()
    page.wait_for_url(live_server + "/stock")  # waits for "load": htmx is listening by then
    page.fill("#stock-search", "red")  # search as you type
    page.wait_for_url(re.compile(r".*/stock\?q=red.*"))
    rows = page.locator("#stock-table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1
    row = page.locator("tr", has_text="MUG-RED")
    assert row.locator(".status").inner_text().strip() == "OK"

    # The row's action opens the product's forms in a dialog; the row itself has none.
    assert row.locator("form").count() == 0
    panel = page.locator("#stock-panel")
    row.get_by_role("link", name="Adjust or count").click()
    panel.get_by_label("Counted").fill("2")
    panel.get_by_role("button", name="Save count").click()
    panel.wait_for(state="hidden")  # a saved count closes the panel

    # The row is swapped out of band; it now says Low (in words, not just colour) with an alert.
    row = page.locator("tr", has_text="MUG-RED")
    row.locator("text=Alert open").wait_for()
    assert "Low" in row.locator(".status").inner_text()
    assert row.locator("td[data-col=on_hand]").inner_text() == "2"
    page.locator(".toast", has_text="MUG-RED: counted 2 (−10).").wait_for()
    # The nav's open-alert badge heard the stock-changed event and refreshed itself.
    page.locator("#alert-badge", has_text="1").wait_for()

    # The swapped row carries the new on-hand figure, so counting again is not "stale".
    row.get_by_role("link", name="Adjust or count").click()
    panel.get_by_label("Counted").fill("0")
    panel.get_by_role("button", name="Save count").click()
    page.locator("tr", has_text="MUG-RED").locator("text=Out of stock").wait_for()

    # The alert page link from the row goes to the open alerts.
    assert page.locator("tr", has_text="MUG-RED").locator("a", has_text="Alert open").get_attribute(
        "href") == "/alerts?tab=open"
    assert problems == [], f"browser errors: {problems}"
    page.close()

    db.session.expire_all()
    product = db.session.scalars(select(Product).where(Product.sku == "MUG-RED")).one()
    assert product.on_hand == 0
    alert = db.session.scalars(select(StockAlert).where(StockAlert.product_id == product.id)).one()
    assert (alert.kind, alert.status) == ("OUT_OF_STOCK", "open")
    counts = db.session.scalars(
        select(StockMovement).where(StockMovement.product_id == product.id, StockMovement.kind == "count")
        .order_by(StockMovement.id)
    ).all()
    assert [(m.on_hand_delta, m.actor_staff.email) for m in counts] == [(-10, email), (-2, email)]
