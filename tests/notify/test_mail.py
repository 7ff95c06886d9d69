"""Mail against a real SMTP server (aiosmtpd on loopback): immediate alerts and digests."""
from __future__ import annotations

from datetime import timedelta

from dashboard.extensions import db
from dashboard.models import Product
from dashboard.services import SYSTEM, adjust, set_staff_active, subscriptions
from dashboard.services.delivery import deliver_due, fan_out
from tests.notify.helpers import deliveries, in_category


def _parts(mail) -> tuple[str, str]:
    return (mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content())


def test_a_manager_subscribed_to_a_category_gets_one_mail_when_it_goes_out(
        smtp, staff_factory, product_factory, now):
    manager = staff_factory("manager", email="mia@shop.example.test")
    subscriptions.choose(manager.id, "immediate", ["Dairy"], now=now)
    milk = product_factory("MILK-1", on_hand=20, threshold=2)
    bread = product_factory("BREAD-1", on_hand=20, threshold=2)
    in_category(milk, "Dairy")
    in_category(bread, "Bakery")
    adjust(milk.id, -20, reason="spoiled", actor=SYSTEM, now=now)
    adjust(bread.id, -20, reason="stale", actor=SYSTEM, now=now)
    assert deliver_due(now).delivered == 1
    [mail] = smtp.mails
    assert mail["To"] == "Manager <mia@shop.example.test>"
    assert mail["From"] == "stockroom@shop.example.test"
    assert mail["Subject"] == "[Stockroom] Out of stock: MILK-1 Product MILK-1"
    text, html = _parts(mail)
    assert "MILK-1 Product MILK-1 is out of stock." in text
    assert "https://stock.example.test/products/MILK-1" in text
    assert 'href="https://stock.example.test/products/MILK-1"' in html
    assert "https://stock.example.test/account/notifications" in text
    assert mail["List-Unsubscribe"] == "<https://stock.example.test/account/notifications>"
    deliver_due(now + timedelta(minutes=1))
    assert len(smtp.mails) == 1


def test_names_in_mails_are_escaped_in_html(smtp, staff_factory, product_factory, now):
    manager = staff_factory("manager")
    subscriptions.choose(manager.id, "immediate", None, now=now)
    product = product_factory("TAG-1", on_hand=3, threshold=1)
    db.session.query(Product).filter_by(id=product.id).update({"name": "<b>Tags</b>"})  # setup
    db.session.commit()
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    deliver_due(now)
    [mail] = smtp.mails
    _text, html = _parts(mail)
    assert "&lt;b&gt;Tags&lt;/b&gt;" in html and "<b>Tags</b>" not in html


def test_managers_start_with_a_daily_digest_sent_once_a_day(smtp, staff_factory,
                                                            product_factory, now):
    manager = staff_factory("manager", email="max@shop.example.test")
    staff_factory("support")  # no mail unless they choose it
    product = product_factory("SOAP-1", on_hand=10, threshold=5)
    adjust(product.id, -7, reason="sold", actor=SYSTEM, now=now)  # low
    adjust(product.id, 20, reason="delivery", actor=SYSTEM, now=now)  # recovered
    morning = now.replace(hour=6)
    assert deliver_due(morning).digests == 0  # before DIGEST_HOUR
    assert deliver_due(now).digests == 1  # 12:00
    assert deliver_due(now + timedelta(hours=3)).digests == 0  # one a day
    [mail] = smtp.mails
    assert mail["To"] == "Manager <max@shop.example.test>"
    assert mail["Subject"].startswith("[Stockroom] Daily digest 2026-11-21: 1 low or out,"
                                      " 1 recovered")
    text, html = _parts(mail)
    assert "SOAP-1 Product SOAP-1: low, 3 available" in text
    assert "resolved by the system" in text
    assert "Stuck holds now: 0" in text and "https://stock.example.test/holds?filter=stuck" in text
    assert "https://stock.example.test/account/notifications" in html
    assert deliver_due(now + timedelta(days=1)).digests == 1
    assert len(smtp.mails) == 2
    assert {d.digest_day for d in deliveries()} == {"2026-11-21", "2026-11-22"}


def test_choosing_off_stops_the_digest(smtp, staff_factory, now):
    manager = staff_factory("manager")
    subscriptions.choose(manager.id, "off", None, now=now)
    assert deliver_due(now).digests == 0
    assert smtp.mails == []


def test_nothing_is_mailed_while_smtp_host_is_unset(notify_config, staff_factory,
                                                    product_factory, now):
    manager = staff_factory("manager")
    subscriptions.choose(manager.id, "immediate", None, now=now)
    product = product_factory(on_hand=3, threshold=1)
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    report = deliver_due(now)
    assert (report.fanned_out, report.digests) == (2, 0)
    assert deliveries() == []


def test_smtp_down_is_retried_then_delivered(smtp, staff_factory, product_factory, now,
                                             monkeypatch, notify_config):
    manager = staff_factory("manager")
    subscriptions.choose(manager.id, "immediate", None, now=now)
    product = product_factory(on_hand=3, threshold=1)
    port = notify_config["SMTP_PORT"]
    monkeypatch.setitem(notify_config, "SMTP_PORT", 1)  # nothing listens there
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    assert deliver_due(now).retrying == 1
    monkeypatch.setitem(notify_config, "SMTP_PORT", port)
    assert deliver_due(now + timedelta(seconds=31)).delivered == 1
    assert len(smtp.mails) == 1


def test_a_member_deactivated_before_the_send_gets_nothing(smtp, staff_factory,
                                                          product_factory, now):
    manager = staff_factory("manager")
    subscriptions.choose(manager.id, "immediate", None, now=now)
    product = product_factory(on_hand=3, threshold=1)
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    assert fan_out(now) == 2
    set_staff_active(manager.id, False)
    assert deliver_due(now).failed == 1
    assert smtp.mails == []
    assert deliveries()[0].last_error == "manager@example.com was deactivated"
