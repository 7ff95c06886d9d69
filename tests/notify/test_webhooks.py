"""Webhooks against a real HTTP receiver thread that verifies every signature."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from dashboard.services import SYSTEM, adjust, webhooks
from dashboard.services.delivery import deliver_due
from dashboard.services.errors import InvalidInput
from tests.notify.conftest import SECRET
from tests.helpers.receivers import WebhookReceiver
from tests.notify.helpers import deliveries
from tests.services.helpers import race


def flip(product, times: int, now) -> None:
    """Out of stock, back in stock, out again, ... `times` crossings."""
    for i in range(times):
        adjust(product.id, -5 if i % 2 == 0 else 5, reason="test", actor=SYSTEM, now=now)


def test_receiver_gets_signed_out_and_back_in_stock_exactly_once(receiver, endpoint,
                                                                product_factory, now):
    product = product_factory(on_hand=5, threshold=1)
    flip(product, 2, now)
    report = deliver_due(now)
    assert (report.delivered, report.failed) == (2, 0)
    assert receiver.events() == [("out_of_stock", product.sku), ("back_in_stock", product.sku)]
    assert receiver.rejected == []  # every signature verified
    first = receiver.received[0]["body"]
    assert first["type"] == "out_of_stock" and first["available"] == 0
    assert first["id"] == receiver.received[0]["id"]
    assert receiver.received[0]["path"] == "/hooks/stockroom"
    deliver_due(now + timedelta(minutes=5))
    assert len(receiver.received) == 2
    assert [d.status for d in deliveries()] == ["delivered", "delivered"]


def test_receiver_down_then_up_gets_every_event_once_and_in_order(receiver, endpoint,
                                                                 product_factory, now):
    product = product_factory(on_hand=5, threshold=1)
    receiver.stop()  # connection refused
    flip(product, 3, now)
    first = deliver_due(now)
    assert (first.delivered, first.retrying, first.waiting) == (0, 1, 2)
    tried = deliveries()
    assert [d.attempts for d in tried] == [1, 0, 0]
    assert "Connection refused" in tried[0].last_error or "ConnectionRefused" in tried[0].last_error
    assert deliver_due(now + timedelta(seconds=10)).delivered == 0  # backing off: not due yet
    receiver.start()
    receiver.status = 503  # up, but answering "unavailable"
    deliver_due(now + timedelta(seconds=31))
    assert deliveries()[0].last_status == 503 and receiver.received == []
    receiver.status = 200
    later = now + timedelta(seconds=31 + 61)
    assert deliver_due(later).delivered == 3
    assert receiver.events() == [("out_of_stock", product.sku), ("back_in_stock", product.sku),
                                 ("out_of_stock", product.sku)]
    assert len(set(receiver.ids())) == 3
    deliver_due(later + timedelta(hours=1))
    assert len(receiver.received) == 3


def test_a_delivery_failing_past_the_retry_time_is_failed_with_its_error(
        receiver, endpoint, product_factory, now, notify_config):
    product = product_factory(on_hand=5, threshold=1)
    receiver.status = 500
    flip(product, 1, now)
    moment, reports = now, []
    while moment < now + timedelta(seconds=notify_config["NOTIFY_RETRY_FOR"] + 600):
        reports.append(deliver_due(moment))
        moment += timedelta(seconds=notify_config["NOTIFY_BACKOFF_MAX"])
    [delivery] = deliveries()
    assert delivery.status == "failed"
    assert delivery.last_status == 500 and delivery.last_error == "HTTP 500 Internal Server Error"
    # 30 s, 60, 120, 240, 480, then every 600 s (the cap) until the hour is up
    assert 5 <= delivery.attempts <= 12
    assert sum(r.failed for r in reports) == 1


def test_a_slow_endpoint_does_not_hold_up_another(app, receiver, endpoint, product_factory,
                                                  now, notify_config, monkeypatch):
    monkeypatch.setitem(notify_config, "NOTIFY_TIMEOUT", 60)  # slow, not timed out
    fast = WebhookReceiver("fast-secret-0123456789")
    try:
        webhooks.add_endpoint(fast.url, ["out_of_stock"], fast.secret, actor=SYSTEM, now=now)
        receiver.gate = threading.Event()
        product = product_factory(on_hand=5, threshold=1)
        flip(product, 1, now)

        def scheduler():
            with app.app_context():
                deliver_due(now)

        run = threading.Thread(target=scheduler)
        run.start()
        try:
            assert receiver.called.wait(30), "the slow endpoint was never called"
            assert fast.wait_for(1), "the fast endpoint waited for the slow one"
            assert receiver.received == []  # still hanging
        finally:
            receiver.gate.set()
            run.join(60)
        assert receiver.events() == [("out_of_stock", product.sku)]
        assert fast.events() == [("out_of_stock", product.sku)]
    finally:
        fast.stop()


def test_two_schedulers_never_deliver_one_event_twice(requires_postgres, app, receiver,
                                                      endpoint, product_factory, now):
    products = [product_factory(on_hand=5, threshold=1) for _ in range(10)]
    for product in products:
        flip(product, 6, now)
    expected = 60

    def scheduler(_i):
        for _ in range(50):
            report = deliver_due(now)
            if report.delivered == 0 and report.fanned_out == 0:
                break
        return True

    assert race(app, 4, scheduler) == [True] * 4
    assert len(receiver.received) == expected
    assert len(set(receiver.ids())) == expected
    assert {d.status for d in deliveries()} == {"delivered"}


@pytest.mark.parametrize("url, says", [
    ("ftp://127.0.0.1/hook", "only http:// and https://"),
    ("http://10.0.0.5/hook", "not in WEBHOOK_ALLOWED_HOSTS"),
    ("http://localhost:8080/hook", "not in WEBHOOK_ALLOWED_HOSTS"),
    ("http://user:pw@127.0.0.1/hook", "credentials"),
    ("http://127.0.0.1:99999/hook", "not a valid address"),
    ("javascript:alert(1)", "only http:// and https://"),
    ("", "enter an http or https address"),
])
def test_an_address_outside_the_allow_list_is_refused_at_save(notify_config, url, says, now):
    with pytest.raises(InvalidInput, match=says):
        webhooks.add_endpoint(url, ["out_of_stock"], None, actor=SYSTEM, now=now)


def test_wildcard_hosts_allow_subdomains_only():
    allowed = ("*.shop.example", "hooks.chat.example")
    assert webhooks.host_allowed("api.shop.example", allowed)
    assert not webhooks.host_allowed("shop.example", allowed)
    assert not webhooks.host_allowed("evilshop.example", allowed)
    assert webhooks.host_allowed("HOOKS.chat.example.", allowed)
    assert not webhooks.host_allowed("chat.example", allowed)


def test_a_host_taken_off_the_allow_list_is_not_sent_to(receiver, endpoint, product_factory,
                                                        now, monkeypatch, notify_config):
    product = product_factory(on_hand=5, threshold=1)
    flip(product, 1, now)
    monkeypatch.setitem(notify_config, "WEBHOOK_ALLOWED_HOSTS", ("hooks.example.com",))
    assert deliver_due(now).failed == 1
    assert receiver.received == []
    assert "no longer in WEBHOOK_ALLOWED_HOSTS" in deliveries()[0].last_error


def test_a_generated_secret_is_long_and_signs_the_test_event(receiver, now, staff_factory):
    from dashboard.services import Actor

    admin = staff_factory("admin")
    made = webhooks.add_endpoint(receiver.url, ["back_in_stock"], "", actor=Actor.staff(admin),
                                 now=now)
    assert len(made.secret) >= 40
    receiver.secret = made.secret
    webhooks.send_test(made.id, actor=Actor.staff(admin), now=now)
    assert deliver_due(now).delivered == 1
    assert receiver.events() == [("test", None)]


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    import hashlib
    import hmac

    header = webhooks.signature(SECRET, 1700000000, b'{"a":1}')
    digest = hmac.new(SECRET.encode(), b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"


def test_an_endpoint_for_stock_updated_gets_each_change_with_its_available(
        app, receiver, product_factory, now, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_STOCK_UPDATED", True)
    webhooks.add_endpoint(receiver.url, ["stock_updated"], SECRET, actor=SYSTEM, now=now)
    product = product_factory(on_hand=10, threshold=2)
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    adjust(product.id, 4, reason="found", actor=SYSTEM, now=now)
    assert deliver_due(now).delivered == 2
    assert [(r["event"], r["body"]["available"]) for r in receiver.received] == [
        ("stock_updated", 7), ("stock_updated", 11)]
