"""Journey in real Chromium: a merchandiser creates a product with the form, edits it, finds
it again by scanning its barcode (the code, then Enter), and deactivates it."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Product
from tests.helpers.web import sign_in_page

pytestmark = pytest.mark.browser


def test_merchandiser_creates_edits_scans_and_deactivates_a_product(
        live_server, chromium, staff_factory, product_factory):
    email = staff_factory("merchandiser", email="mia@example.com").email
    product_factory("MUG-BLUE", name="Blue mug", on_hand=40, threshold=3)
    db.session.rollback()  # SQLite: let the live server take the write lock

    page = sign_in_page(chromium, live_server, email)
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(live_server + "/stock")
    page.get_by_role("link", name="New product").click()
    page.wait_for_url(live_server + "/products/new")
    page.fill("#sku", "TEE-BLACK-M")
    page.fill("#name", "Black tee, M")
    page.fill("#price", "19,90")
    page.fill("#barcode", "4006381333932")  # a wrong check digit first
    page.fill("#category", "T-shirts")
    page.fill("#on_hand", "25")
    page.get_by_role("button", name="Create product").click()
    assert "wrong check digit (the last digit should be 1)" in page.locator(
        "#barcode-error").inner_text()
    page.fill("#barcode", "4006381333931")
    page.get_by_role("button", name="Create product").click()
    page.wait_for_url(live_server + "/products/TEE-BLACK-M")
    assert page.locator("#product-barcode").inner_text() == "4006381333931"
    assert "TEE-BLACK-M: created." in page.locator(".flash-success").inner_text()

    page.get_by_role("link", name="Edit product").click()
    page.fill("#supplier", "Acme Textiles")
    page.get_by_role("button", name="Save product").click()
    page.wait_for_url(live_server + "/products/TEE-BLACK-M")
    assert "Acme Textiles" in page.content()

    # Scan to find: a scanner types the code into the search box and presses Enter.
    page.goto(live_server + "/stock")
    page.locator("#stock-search").type("4006381333931", delay=5)
    page.locator("#stock-search").press("Enter")
    page.wait_for_url(live_server + "/products/TEE-BLACK-M")

    # The category filter lists only that department.
    page.goto(live_server + "/stock")
    page.select_option("#stock-category", "T-shirts")
    page.wait_for_url(re.compile(r".*/stock\?category=T-shirts"))
    page.locator("#stock-table tbody tr").first.wait_for()
    assert page.locator("#stock-table tbody tr").count() == 1

    page.goto(live_server + "/products/TEE-BLACK-M")
    page.get_by_role("link", name="Deactivate…").click()
    assert "New holds will be refused" in page.locator("#deactivate-warning").inner_text()
    page.get_by_role("button", name="Deactivate TEE-BLACK-M").click()
    page.wait_for_url(live_server + "/products/TEE-BLACK-M")
    assert problems == []
    db.session.rollback()
    product = db.session.scalars(select(Product).where(Product.sku == "TEE-BLACK-M")).one()
    assert (product.is_active, product.on_hand, product.supplier) == (False, 25, "Acme Textiles")


def test_merchandiser_checks_and_applies_a_product_file(live_server, chromium, staff_factory,
                                                        tmp_path):
    email = staff_factory("merchandiser", email="mia@example.com").email
    db.session.rollback()
    source = tmp_path / "shop.csv"
    source.write_bytes("\ufeffItem;Title;Price;EAN;Department;Qty\n"
                       "MUG-1;Mug;9,95;4006381333931;Kitchen;5\nCUP-1;Cup;3;;Kitchen;0\n"
                       .encode())
    page = sign_in_page(chromium, live_server, email)
    page.goto(live_server + "/stock/products-import")
    page.set_input_files("#products-file", str(source))
    page.get_by_role("button", name="Check file").click()
    apply = page.get_by_role("button", name="Apply: create 2, update 0")
    apply.wait_for()
    assert page.locator("#creates tbody tr").count() == 2
    page.once("dialog", lambda dialog: dialog.accept())  # "Create 2 and update 0 products now?"
    apply.click()
    page.wait_for_url(live_server + "/stock")
    assert "2 created" in page.locator(".flash-success").inner_text()
    db.session.rollback()
    rows = db.session.execute(select(Product.sku, Product.on_hand).order_by(Product.sku)).all()
    assert [tuple(r) for r in rows] == [("CUP-1", 0), ("MUG-1", 5)]
