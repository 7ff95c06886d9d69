"""Notifications delivered by real `flask --app wsgi scheduler` processes: two of them, a
webhook receiver down for a while and then up, every event received exactly once."""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import NotificationDelivery
from dashboard.services import SYSTEM, adjust, webhooks
from tests.helpers.receivers import WebhookReceiver

pytestmark = pytest.mark.slow
SECRET = "whsec-processes-0123456789"
QUIET = {"ALERTS_INTERVAL": "3600", "RECONCILE_INTERVAL": "3600"}


def wait_for(what, condition, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def count(*where) -> int:
    found = db.session.scalar(select(func.count()).select_from(NotificationDelivery)
                              .where(*where))
    db.session.commit()
    return found


def test_two_schedulers_deliver_through_an_outage_exactly_once(schedulers, app,
                                                               product_factory, monkeypatch):
    receiver = WebhookReceiver(SECRET)
    try:
        monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ("127.0.0.1",))
        now = datetime.now(timezone.utc)
        webhooks.add_endpoint(receiver.url, ["out_of_stock", "back_in_stock"], SECRET,
                              actor=SYSTEM, now=now)
        receiver.stop()  # down before anything is sent
        products = [product_factory(on_hand=5, threshold=1) for _ in range(8)]
        for product in products:
            for delta in (-5, 5, -5):  # out, back, out: three events each
                adjust(product.id, delta, reason="test", actor=SYSTEM, now=now)
        expected = 3 * len(products)
        env = {**QUIET, "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "NOTIFY_INTERVAL": "1",
               "NOTIFY_BACKOFF_FIRST": "1", "NOTIFY_BACKOFF_MAX": "2", "NOTIFY_TIMEOUT": "2",
               "NOTIFY_BATCH": "5"}
        first, second = schedulers(**env), schedulers(**env)
        wait_for("both schedulers to try and fail",
                 lambda: count(NotificationDelivery.attempts >= 2) >= 1)
        assert receiver.received == []
        receiver.start()
        wait_for("every delivery to be delivered",
                 lambda: count(NotificationDelivery.status == "delivered") == expected)
        time.sleep(3)  # a few more notify runs of both: nothing left to send twice
        assert first.poll() is None and second.poll() is None, schedulers.logs()
        ids = Counter(receiver.ids())
        assert len(ids) == expected and set(ids.values()) == {1}, ids
        assert receiver.rejected == []
        per_product = {}
        for event, sku in receiver.events():
            per_product.setdefault(sku, []).append(event)
        # In order per endpoint, however the outage fell: a storefront ends on the truth.
        assert all(kinds == ["out_of_stock", "back_in_stock", "out_of_stock"]
                   for kinds in per_product.values()), per_product
        assert "notify: fanned_out=" in schedulers.logs()
    finally:
        receiver.stop()
