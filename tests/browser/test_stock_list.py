"""In real Chromium: the stock list's search by words, the row's panel on a tablet, and paging
(issue 14 items 1, 5, 6)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import Product, StockMovement
from tests.helpers.web import sign_in_page

pytestmark = pytest.mark.browser

TABLET = {"width": 820, "height": 1180}


def _watch(page) -> list[str]:
    problems: list[str] = []
    # A refusal is a 409/422 answer by design; Chromium logs each as a failed resource.
    refusal = re.compile(r"status of (409|422) ")
    page.on("console", lambda message: message.type == "error" and not refusal.search(message.text)
            and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def _stock(page, base: str, query: str = "") -> None:
    page.goto(f"{base}/stock{query}")
    page.wait_for_load_state("load")  # htmx is listening by then


def test_search_finds_every_word_in_any_order(live_server, chromium, staff_factory, product_factory):
    email = staff_factory("merchandiser", email="mia@example.com").email
    sock = product_factory("SCK-MER-1", name="Merino sock grey")
    product_factory("SCK-CTN-2", name="Cotton sock white")
    product_factory("HAT-OAT-3", name="Beanie oat")
    db.session.execute(update(Product).where(Product.id == sock.id).values(category="Socks"))
    db.session.commit()
    db.session.rollback()  # SQLite: let the live server take the write lock

    page = sign_in_page(chromium, live_server, email)
    problems = _watch(page)
    _stock(page, live_server)
    page.fill("#stock-search", "sock merino")
    page.wait_for_url(re.compile(r".*/stock\?q=sock(%20|\+)merino.*"))
    rows = page.locator("#stock-table tbody tr")
    page.locator("#stock-range", has_text="1–1 of 1").wait_for()
    assert rows.count() == 1 and "SCK-MER-1" in rows.first.inner_text()
    page.fill("#stock-search", "OAT beanie")
    page.locator("#stock-table tbody tr", has_text="HAT-OAT-3").wait_for()
    assert rows.count() == 1
    page.fill("#stock-search", "socks grey")  # a category word and a name word
    page.locator("#stock-table tbody tr", has_text="SCK-MER-1").wait_for()
    assert rows.count() == 1
    assert page.locator("[data-tab-count=all]").inner_text() == "1"
    assert page.evaluate("document.activeElement.id") == "stock-search"
    # Enter sends the whole form (a scanner ends a code so): the new page keeps the keyboard
    # in the search box rather than dropping it to <body>.
    page.fill("#stock-search", "beanie")
    page.press("#stock-search", "Enter")
    page.wait_for_url(re.compile(r".*scan=1.*"))
    page.locator("#stock-table tbody tr", has_text="HAT-OAT-3").wait_for()
    assert page.evaluate("document.activeElement.id") == "stock-search"
    assert problems == [], f"browser errors: {problems}"
    page.close()


def test_adjust_opens_in_a_panel_that_fits_a_tablet(live_server, chromium, staff_factory,
                                                    product_factory):
    email = staff_factory("merchandiser", email="mia@example.com").email
    product = product_factory("TSH-NVY-004217", name="Classic navy cotton t-shirt M", on_hand=12)
    for i in range(5):
        product_factory(f"MUG-{i}", name=f"Everyday ceramic mug {i}", on_hand=30)
    product_id = product.id  # read now: a read later would hold SQLite's lock against the server
    db.session.rollback()

    page = sign_in_page(chromium, live_server, email)
    page.set_viewport_size(TABLET)
    problems = _watch(page)
    _stock(page, live_server)
    row = page.locator("tr", has_text="TSH-NVY-004217")

    # Columns adapt: the minor ones give way, the name keeps its words on few lines, and
    # nothing is cut off to the right.
    assert page.locator("#stock-table th", has_text="Reserved").is_hidden()
    name = row.locator("td").nth(1)
    line = float(name.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
    assert name.bounding_box()["height"] < 2.6 * line, "the name wraps a word per line"
    action = row.get_by_role("link", name="Adjust or count")
    box = action.bounding_box()
    assert box["x"] + box["width"] <= TABLET["width"], "the row's action is clipped"
    assert page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]

    # The action opens a dialog; focus moves into it; Escape closes it and focus comes back.
    action.click()
    panel = page.locator("#stock-panel")
    change = panel.get_by_label("Change (units)")
    change.wait_for()
    assert panel.evaluate("d => d.open") and change.evaluate("e => e === document.activeElement")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert action.evaluate("e => e === document.activeElement")

    # Open again: the whole form is inside the viewport, and it works.
    action.click()
    change.wait_for()
    for field in (change, panel.get_by_label("Reason"), panel.get_by_role("button", name="Adjust")):
        box = field.bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= TABLET["width"] and box["y"] + box["height"] <= TABLET["height"]
    change.fill("-3")
    panel.get_by_label("Reason").fill("two broken in the box")
    panel.get_by_role("button", name="Adjust").click()
    panel.wait_for(state="hidden")
    page.locator(".toast", has_text="TSH-NVY-004217: on hand 12 → 9 (−3).").wait_for()
    page.locator("tr", has_text="TSH-NVY-004217").locator("td[data-col=on_hand]", has_text="9").wait_for()
    # Focus goes back to the (re-rendered) row's action.
    page.wait_for_function("() => document.activeElement"
                           " && document.activeElement.id === 'change-%d-open'" % product_id)

    # A refusal stays in the panel, beside its field.
    page.locator("tr", has_text="TSH-NVY-004217").get_by_role("link", name="Adjust or count").click()
    change.fill("-50")
    panel.get_by_label("Reason").fill("too many")
    panel.get_by_role("button", name="Adjust").click()
    panel.locator(".error", has_text="on hand cannot go below 0").wait_for()
    assert panel.evaluate("d => d.open")
    assert problems == [], f"browser errors: {problems}"
    page.close()

    db.session.expire_all()
    moves = db.session.scalars(select(StockMovement).where(
        StockMovement.product_id == product_id, StockMovement.kind == "adjust")).all()
    assert [(m.on_hand_delta, m.reason) for m in moves] == [(-3, "two broken in the box")]


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, TABLET])
def test_next_page_starts_at_the_top_of_the_table(live_server, chromium, staff_factory,
                                                  product_factory, viewport):
    email = staff_factory("viewer", email="val@example.com").email
    for i in range(120):
        product_factory(f"ITEM-{i:03}", name=f"Item number {i}", on_hand=0 if i % 10 == 0 else 40,
                        threshold=5)
    db.session.rollback()

    page = sign_in_page(chromium, live_server, email)
    page.set_viewport_size(viewport)
    problems = _watch(page)
    _stock(page, live_server)
    assert page.locator("#stock-range").inner_text() == "1–50 of 120"
    assert page.locator("[data-tab-count=out]").inner_text() == "12"
    assert page.locator("[data-tab-count=low]").inner_text() == "0"

    # The header stays in view while the list scrolls.
    page.mouse.wheel(0, 1200)
    # A function, not an expression: polling an expression evals it in the page, which the
    # page's CSP (script-src 'self') refuses whenever the first check comes back false.
    page.wait_for_function("() => window.scrollY > 600")
    header = page.locator("#stock-table thead th").first
    assert abs(header.bounding_box()["y"]) <= 1

    page.locator("nav.pager").get_by_role("link", name="Next page").click()
    page.locator("#stock-range", has_text="51–100 of 120").wait_for()
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'stock-range'")
    top = page.locator("#stock-range").bounding_box()["y"]
    assert 0 <= top <= 100, f"after Next the table starts {top} px down the view"
    assert "ITEM-050" in page.locator("#stock-table tbody tr").first.inner_text()

    page.locator("nav.pager").get_by_role("link", name="Next page").click()
    page.locator("#stock-range", has_text="101–120 of 120").wait_for()
    page.locator("nav.pager").get_by_role("link", name="Previous page").click()
    page.locator("#stock-range", has_text="51–100 of 120").wait_for()
    assert problems == [], f"browser errors: {problems}"
    page.close()
