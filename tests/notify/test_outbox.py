"""The outbox: events are written by the services in the change's own transaction."""
from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.models import NotificationEvent, StockAlert
from dashboard.services import SYSTEM, Actor, Owner, adjust, release, reserve, resolve
from dashboard.services.errors import BelowHeld
from dashboard.services.events import available_changed, crossing
from dashboard.services.transaction import unit_of_work
from tests.notify.helpers import events


def test_going_out_and_back_writes_the_crossings_and_the_alert_changes(product_factory, now):
    product = product_factory(on_hand=5, threshold=2)
    assert events() == []  # opening stock is nobody's news
    adjust(product.id, -5, reason="damaged", actor=SYSTEM, now=now)
    assert events() == [("out_of_stock", product.id), ("alert_opened", product.id)]
    adjust(product.id, 10, reason="delivery", actor=SYSTEM, now=now)
    assert events()[2:] == [("back_in_stock", product.id), ("alert_resolved", product.id)]


def test_a_change_that_stays_on_one_side_of_zero_writes_no_crossing(product_factory, now):
    product = product_factory(on_hand=50, threshold=2)
    adjust(product.id, -10, reason="sold", actor=SYSTEM, now=now)
    adjust(product.id, 5, reason="found", actor=SYSTEM, now=now)
    assert events() == []


def test_low_then_out_is_opened_then_escalated(product_factory, now):
    product = product_factory(on_hand=10, threshold=5)
    adjust(product.id, -7, reason="sold", actor=SYSTEM, now=now)
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    assert events() == [("alert_opened", product.id), ("out_of_stock", product.id),
                        ("alert_escalated", product.id)]


def test_a_hold_taking_the_last_units_is_out_of_stock_and_its_release_back(product_factory,
                                                                          now):
    product = product_factory(on_hand=3, threshold=1)
    hold = reserve(product.sku, 3, Owner(session_key="s-1"), actor=SYSTEM, now=now)
    assert ("out_of_stock", product.id) in events()
    release(hold.id, actor=SYSTEM, reason="cart emptied", now=now)
    assert ("back_in_stock", product.id) in events()


def test_resolving_by_hand_says_who(product_factory, staff_factory, now):
    manager = staff_factory("manager")
    product = product_factory(on_hand=1, threshold=5)
    alert_id = db.session.query(StockAlert.id).filter_by(product_id=product.id).scalar()
    resolve(alert_id, actor=Actor.staff(manager), note="supplier is late", now=now)
    resolved = db.session.query(NotificationEvent).filter_by(kind="alert_resolved").one()
    assert (resolved.alert_id, resolved.staff_id) == (alert_id, manager.id)


def test_a_change_that_rolls_back_emits_nothing(product_factory, now):
    product = product_factory(on_hand=4, threshold=1)
    with pytest.raises(RuntimeError), unit_of_work():
        adjust(product.id, -4, reason="damaged", actor=SYSTEM, now=now)
        assert [kind for kind, _ in events(end_transaction=False)] == [
            "out_of_stock", "alert_opened"]
        raise RuntimeError("the request failed after the change")
    assert events() == []


def test_a_refused_change_emits_nothing(product_factory, now):
    product = product_factory(on_hand=4, threshold=1)
    reserve(product.sku, 2, Owner(session_key="s-1"), actor=SYSTEM, now=now)
    with pytest.raises(BelowHeld):
        adjust(product.id, -4, reason="damaged", actor=SYSTEM, now=now)
    assert events() == []


@pytest.mark.parametrize("before, after, kind", [
    (1, 0, "out_of_stock"), (5, -1, "out_of_stock"), (0, 1, "back_in_stock"),
    (-2, 3, "back_in_stock"), (0, 0, None), (3, 1, None), (0, -1, None),
])
def test_crossing_is_news_only_across_zero(before, after, kind):
    assert crossing(before, after) == kind


def test_available_changed_writes_nothing_when_nothing_crosses(product_factory, now):
    product = product_factory(on_hand=5)
    available_changed(product.id, 5, 4, now)
    available_changed(product.id, 5, 0, now)
    assert events() == [("out_of_stock", product.id)]


def test_stock_updated_is_written_for_every_change_only_when_turned_on(
        app, product_factory, now, monkeypatch):
    product = product_factory(on_hand=10, threshold=2)
    adjust(product.id, -3, reason="sold", actor=SYSTEM, now=now)
    assert events() == []  # off by default: no statement added to a stock change
    monkeypatch.setitem(app.config, "NOTIFY_STOCK_UPDATED", True)
    adjust(product.id, -2, reason="sold", actor=SYSTEM, now=now)
    adjust(product.id, -5, reason="sold", actor=SYSTEM, now=now)
    assert events() == [("stock_updated", product.id), ("out_of_stock", product.id),
                        ("stock_updated", product.id), ("alert_opened", product.id)]
