"""The notification pages: your settings, who receives what, webhooks and their log."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import NotificationEvent, WebhookEndpoint
from dashboard.services import SYSTEM, adjust, subscriptions
from dashboard.services.delivery import deliver_due
from tests.notify.conftest import SECRET
from tests.notify.helpers import in_category


def _count(model) -> int:
    found = db.session.scalar(select(func.count()).select_from(model))
    db.session.commit()
    return found


def test_a_viewer_chooses_immediate_mails_for_some_categories(client_for, product_factory, now):
    in_category(product_factory("MILK-1"), "Dairy")
    in_category(product_factory("BREAD-1"), "Bakery")
    client = client_for("viewer")
    page = client.get("/account/notifications")
    assert page.status_code == 200
    assert re.search(r'<input checked[^>]*value="off"', page.get_data(as_text=True))
    assert b"Dairy" in page.data and b"Bakery" in page.data
    saved = client.post("/account/notifications", data={"mode": "immediate",
                                                        "categories": ["Dairy"]})
    assert saved.status_code == 302
    mine = subscriptions.subscription_of(client.user.id)
    assert (mine.mode, mine.categories, mine.chosen) == ("immediate", ("Dairy",), True)
    again = client.get("/account/notifications")
    assert b"Notification settings saved." in again.data


def test_a_choice_without_categories_or_all_is_refused(client_for):
    client = client_for("manager")
    answer = client.post("/account/notifications", data={"mode": "immediate"})
    assert answer.status_code == 422
    assert b"choose at least one category, or all products" in answer.data
    assert subscriptions.subscription_of(client.user.id).chosen is False


def test_an_unknown_mode_is_a_form_error(client_for):
    client = client_for("manager")
    answer = client.post("/account/notifications", data={"mode": "hourly", "everything": "y"})
    assert answer.status_code == 422
    assert subscriptions.subscription_of(client.user.id).mode == "digest"  # unchanged default


def test_admins_see_who_receives_what(client_for, staff_factory, now):
    staff_factory("manager", email="mo@example.com")
    support = staff_factory("support", email="sue@example.com")
    subscriptions.choose(support.id, "immediate", None, now=now)
    page = client_for("admin").get("/admin/notifications")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "mo@example.com" in text and "daily digest" in text and "(default for managers)" in text
    assert "sue@example.com" in text and "as they happen" in text


@pytest.mark.parametrize("role", ["viewer", "merchandiser", "support", "manager"])
def test_only_admins_reach_the_notification_admin_pages(client_for, role, endpoint):
    client = client_for(role)
    assert client.post(f"/admin/webhooks/{endpoint.id}/test").status_code == 403
    assert client.post(f"/admin/webhooks/{endpoint.id}/active",
                       data={"active": "0"}).status_code == 403
    assert _count(NotificationEvent) == 0
    assert db.session.get(WebhookEndpoint, endpoint.id).is_active is True
    db.session.commit()
    assert client.get("/admin/notifications").status_code == 403
    assert client.get("/admin/webhooks").status_code == 403
    answer = client.post("/admin/webhooks", data={"url": "http://127.0.0.1/x",
                                                  "events": ["out_of_stock"]})
    assert answer.status_code == 403
    assert _count(WebhookEndpoint) == 1  # only the fixture's


def test_an_admin_adds_an_endpoint_sees_its_secret_once_and_its_log(
        client_for, receiver, product_factory, now):
    client = client_for("admin")
    added = client.post("/admin/webhooks", data={
        "url": receiver.url, "events": ["out_of_stock", "back_in_stock"], "secret": SECRET})
    assert added.status_code == 200
    assert SECRET in added.get_data(as_text=True)
    product = product_factory("CUP-1", on_hand=2, threshold=1)
    adjust(product.id, -2, reason="broken", actor=SYSTEM, now=now)
    deliver_due(now)
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert SECRET not in page
    assert "out_of_stock CUP-1" in page and "delivered" in page
    assert receiver.events() == [("out_of_stock", "CUP-1")]


def test_an_address_off_the_allow_list_is_a_form_error(client_for, notify_config):
    answer = client_for("admin").post("/admin/webhooks", data={
        "url": "http://169.254.169.254/latest", "events": ["out_of_stock"]})
    assert answer.status_code == 422
    assert "169.254.169.254 is not in WEBHOOK_ALLOWED_HOSTS" in answer.get_data(as_text=True)
    assert _count(WebhookEndpoint) == 0


def test_send_test_queues_a_test_event_and_pause_stops_new_deliveries(client_for, receiver,
                                                                      endpoint, now):
    client = client_for("admin")
    sent = client.post(f"/admin/webhooks/{endpoint.id}/test")
    assert sent.status_code == 302
    assert db.session.scalar(select(NotificationEvent.kind)) == "test"
    db.session.commit()
    deliver_due(now)
    assert receiver.events() == [("test", None)]
    paused = client.post(f"/admin/webhooks/{endpoint.id}/active", data={"active": "0"})
    assert paused.status_code == 302
    assert db.session.get(WebhookEndpoint, endpoint.id).is_active is False
    db.session.commit()
    assert client.post("/admin/webhooks/999/test").status_code == 404
