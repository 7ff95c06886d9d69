"""In real Chromium: a support agent filters stuck holds and releases two with a reason."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Reservation
from dashboard.services import SYSTEM, Owner
from tests.helpers.web import sign_in_page

pytestmark = pytest.mark.browser


def test_support_releases_two_stuck_holds_with_a_reason(
        live_server, chromium, product_factory, staff_factory):
    support = staff_factory(role="support", email="support@example.com")
    product = product_factory(sku="KETTLE-1", on_hand=20)
    clock = datetime.now(timezone.utc)
    stuck = [
        services.reserve(product.sku, 2, Owner(session_key=f"abandoned-{i}"), 900,
                         actor=SYSTEM, now=clock - timedelta(minutes=30))
        for i in range(2)
    ]
    fine = services.reserve(product.sku, 1, Owner(session_key="shopping"), 900,
                            actor=SYSTEM, now=clock)
    stuck_ids, fine_id, support_id = [h.id for h in stuck], fine.id, support.id
    db.session.rollback()  # SQLite: let the server take the write lock

    page = sign_in_page(chromium, live_server, "support@example.com")
    page.goto(live_server + "/holds")
    expect(page.locator(f"#hold-{fine_id}")).to_be_visible()

    page.get_by_label("Show").select_option("stuck")
    expect(page.locator(f"#hold-{fine_id}")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"filter=stuck"))
    for hold_id in stuck_ids:
        row = page.locator(f"#hold-{hold_id}")
        expect(row).to_contain_text("overdue")
        row.get_by_label(f"Select hold {hold_id}").check()

    page.fill("#bulk-reason", 'Abandoned sessions <not> "checkout"')
    page.get_by_role("button", name="Release selected").click()
    expect(page.locator("#toasts")).to_contain_text("Released 2 holds")
    expect(page.locator("#holds-results")).to_contain_text("No active holds match these filters")

    # The pushed URL renders as a full page on reload, still filtered.
    page.reload()
    expect(page.get_by_label("Show")).to_have_value("stuck")

    db.session.expire_all()
    for hold_id in stuck_ids:
        hold = db.session.get(Reservation, hold_id)
        assert (hold.status, hold.ended_by_staff_id) == ("released", support_id)
        assert hold.end_reason == 'Abandoned sessions <not> "checkout"'
    assert db.session.get(Reservation, fine_id).status == "active"
    assert services.check() == []


def test_a_rows_forms_load_when_it_is_opened_and_release_it(
        live_server, chromium, product_factory, staff_factory):
    # The list renders no row forms (issue 12): opening a row fetches them (hx-trigger toggle).
    staff_factory(role="support", email="support@example.com")
    product = product_factory(sku="KETTLE-1", on_hand=20)
    clock = datetime.now(timezone.utc)
    hold_id = services.reserve(product.sku, 2, Owner(session_key="called-in"), 900,
                               actor=SYSTEM, now=clock).id
    db.session.rollback()  # SQLite: let the server take the write lock

    page = sign_in_page(chromium, live_server, "support@example.com")
    page.goto(live_server + "/holds")
    row = page.locator(f"#hold-{hold_id}")
    expect(row.get_by_label("Reason")).to_have_count(0)
    row.locator("summary", has_text="Release or extend").click()
    reason = row.get_by_label("Reason")
    expect(reason).to_be_visible()
    expect(row.get_by_label("Extend by")).to_have_value("15")
    reason.fill("Customer phoned: cancelled")
    row.get_by_role("button", name="Release", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Released 1 hold")
    expect(page.locator(f"#hold-{hold_id}")).to_have_count(0)

    db.session.expire_all()
    hold = db.session.get(Reservation, hold_id)
    assert (hold.status, hold.end_reason) == ("released", "Customer phoned: cancelled")
    assert services.check() == []
