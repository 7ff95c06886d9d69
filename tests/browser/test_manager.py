"""In real Chromium: a manager resolves an alert with a note."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import StockAlert
from tests.helpers.web import sign_in_page

pytestmark = pytest.mark.browser


def test_manager_resolves_an_alert_with_a_note(
        live_server, chromium, product_factory, staff_factory):
    manager = staff_factory(role="manager", email="manager@example.com")
    product = product_factory(sku="TEAPOT-1", on_hand=1, threshold=5)
    alert = db.session.scalars(select(StockAlert).where(StockAlert.product_id == product.id)).one()
    alert_id, manager_id = alert.id, manager.id
    db.session.rollback()  # SQLite: let the server take the write lock

    page = sign_in_page(chromium, live_server, "manager@example.com")
    page.goto(live_server + "/alerts")
    row = page.locator(f"#alert-{alert_id}")
    expect(row).to_contain_text("Low stock")

    row.get_by_text("Resolve…").click()
    row.get_by_label("Resolution note").fill("Reorder placed with supplier, PO 4411")
    row.get_by_role("button", name="Resolve", exact=True).click()

    row = page.locator(f"#alert-{alert_id}")
    expect(row).to_contain_text("Resolved")
    expect(row).to_contain_text("Reorder placed with supplier, PO 4411")
    expect(page.locator("#toasts")).to_contain_text("Alert resolved")

    page.get_by_role("link", name="Resolved").click()
    expect(page.locator(f"#alert-{alert_id}")).to_contain_text("by Manager")

    db.session.expire_all()
    fresh = db.session.get(StockAlert, alert_id)
    assert fresh.status == "resolved" and fresh.resolved_by_id == manager_id
    assert fresh.resolution_note == "Reorder placed with supplier, PO 4411"
