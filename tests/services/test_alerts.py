"""Alert lifecycle (SPEC §4): raise, escalate, de-escalate, auto-resolve, manual resolve."""
from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard import create_app, services
from dashboard.extensions import db
from dashboard.services import SYSTEM
from dashboard.services.errors import AlertWrongState, InsufficientStock, InvalidInput, NotFound
from tests.helpers.app import app_config
from tests.helpers.records import make_cart
from tests.services.helpers import SESSION, alerts_of, staff_actor, unresolved_alert


@pytest.fixture
def manager(staff_factory):
    return staff_actor(staff_factory, "manager", "boss@example.com")


def _set_available(product, available: int, now):
    """Move a product (threshold set by the test) to `available` with an adjustment."""
    fresh = services.find_product(product.sku)
    db.session.refresh(fresh)
    delta = available - fresh.available
    if delta:
        services.adjust(product.sku, delta, reason="test", actor=SYSTEM, now=now)


def test_alert_lifecycle_low_out_low_recovered(product_factory, manager, now):
    product = product_factory(on_hand=10, threshold=3)
    assert unresolved_alert(product.id) is None

    _set_available(product, 3, now)  # at the threshold: LOW
    low = unresolved_alert(product.id)
    assert (low.kind, low.status, low.opened_available, low.opened_at) == (
        "LOW_STOCK", "open", 3, now)

    services.acknowledge(low.id, actor=manager, now=now)
    assert unresolved_alert(product.id).status == "acknowledged"

    later = now + timedelta(minutes=1)
    _set_available(product, 0, later)  # escalate in place, re-opened
    out = unresolved_alert(product.id)
    assert (out.id, out.kind, out.status, out.kind_changed_at) == (
        low.id, "OUT_OF_STOCK", "open", later)

    _set_available(product, 2, later)  # de-escalate in place
    back = unresolved_alert(product.id)
    assert (back.id, back.kind) == (low.id, "LOW_STOCK")

    _set_available(product, 4, later)  # above the threshold: resolved by the system
    assert unresolved_alert(product.id) is None
    [done] = alerts_of(product.id)
    assert (done.status, done.resolved_by_id, done.resolved_at) == ("resolved", None, later)
    assert done.resolution_note == (
        "Recovered automatically: 4 available, above the threshold of 3.")
    assert services.check() == []


def test_a_product_gets_one_unresolved_alert_not_one_per_crossing(product_factory, now):
    product = product_factory(on_hand=10, threshold=5)
    for _ in range(5):
        services.reserve(product.sku, 1, SESSION, now=now)
    assert len(alerts_of(product.id)) == 1
    assert unresolved_alert(product.id).opened_available == 5


def test_falling_straight_to_zero_opens_out_of_stock(product_factory, now):
    product = product_factory(on_hand=10, threshold=3)
    services.reserve(product.sku, 10, SESSION, now=now)
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"


def test_manual_resolve_mutes_until_recovery_then_rearms(product_factory, manager, now):
    product = product_factory(on_hand=10, threshold=3)
    _set_available(product, 2, now)
    alert = unresolved_alert(product.id)

    resolved = services.resolve(alert.id, actor=manager, note="supplier delayed, known",
                                now=now)
    assert (resolved.status, resolved.resolved_by_id, resolved.resolution_note) == (
        "resolved", manager.id, "supplier delayed, known")

    _set_available(product, 0, now)  # still low (worse even): no new alert, muted
    _set_available(product, 1, now)
    services.evaluate_alerts(now=now)
    assert unresolved_alert(product.id) is None

    _set_available(product, 4, now)  # recovered above the threshold: re-armed
    _set_available(product, 3, now)  # fell again: alerted again
    again = unresolved_alert(product.id)
    assert again is not None and again.id != alert.id and again.kind == "LOW_STOCK"
    assert services.check() == []


def test_manual_resolve_mute_also_holds_for_the_scheduled_evaluation(
    product_factory, manager, now
):
    product = product_factory(on_hand=1, threshold=3)
    services.evaluate_alerts(now=now)
    alert = unresolved_alert(product.id)
    services.resolve(alert.id, actor=manager, note="ok", now=now)
    assert services.evaluate_alerts(now=now).opened == 0
    assert unresolved_alert(product.id) is None


def test_deactivating_a_product_resolves_its_alert(product_factory, manager, now):
    product = product_factory(on_hand=1, threshold=3)
    assert unresolved_alert(product.id) is not None
    services.update_product(product.sku, is_active=False, actor=manager, now=now)
    [alert] = alerts_of(product.id)
    assert alert.status == "resolved"
    assert alert.resolution_note == "Resolved automatically: the product was deactivated."
    assert services.check() == []


def test_raising_the_threshold_raises_an_alert(product_factory, manager, now):
    product = product_factory(on_hand=5, threshold=2)
    assert unresolved_alert(product.id) is None
    services.update_product(product.sku, low_stock_threshold=5, actor=manager, now=now)
    assert unresolved_alert(product.id).kind == "LOW_STOCK"


def test_scheduled_evaluation_catches_changes_made_outside_the_app(product_factory, now):
    low = product_factory(on_hand=10, threshold=3)
    fine = product_factory(on_hand=1, threshold=3)
    db.session.execute(db.text("UPDATE products SET on_hand = 0 WHERE id = :id"),
                       {"id": low.id})
    db.session.execute(db.text("UPDATE products SET on_hand = 50 WHERE id = :id"),
                       {"id": fine.id})
    db.session.commit()

    changes = services.evaluate_alerts(now=now)

    assert (changes.opened, changes.resolved) == (1, 1)
    assert unresolved_alert(low.id).kind == "OUT_OF_STOCK"
    [recovered] = alerts_of(fine.id)
    assert recovered.resolution_note == (
        "Recovered automatically: 50 available, above the threshold of 3.")
    assert services.evaluate_alerts(now=now).as_dict() == {
        "opened": 0, "escalated": 0, "deescalated": 0, "resolved": 0}


def test_set_based_evaluation_escalates_and_deescalates(product_factory, now):
    product = product_factory(on_hand=2, threshold=3)
    alert = unresolved_alert(product.id)
    db.session.execute(db.text("UPDATE products SET on_hand = 0 WHERE id = :id"),
                       {"id": product.id})
    db.session.commit()
    assert services.evaluate_alerts([product.id], now=now).escalated == 1
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"
    db.session.execute(db.text("UPDATE products SET on_hand = 1 WHERE id = :id"),
                       {"id": product.id})
    db.session.commit()
    assert services.evaluate_alerts([product.id], now=now).deescalated == 1
    assert unresolved_alert(product.id).id == alert.id


def test_acknowledge_twice_changes_nothing_and_resolved_alerts_refuse(
    product_factory, manager, now
):
    product = product_factory(on_hand=1, threshold=3)
    alert = unresolved_alert(product.id)
    services.acknowledge(alert.id, actor=manager, now=now)
    services.acknowledge(alert.id, actor=manager, now=now + timedelta(minutes=1))
    assert unresolved_alert(product.id).acknowledged_at == now

    services.resolve(alert.id, actor=manager, note="done", now=now)
    with pytest.raises(AlertWrongState, match="already resolved by Manager"):
        services.acknowledge(alert.id, actor=manager, now=now)
    with pytest.raises(AlertWrongState):
        services.resolve(alert.id, actor=manager, note="again", now=now)
    with pytest.raises(NotFound):
        services.acknowledge(424242, actor=manager, now=now)


def test_resolve_needs_a_note(product_factory, manager, now):
    product = product_factory(on_hand=1, threshold=3)
    alert = unresolved_alert(product.id)
    with pytest.raises(InvalidInput, match="note is required"):
        services.resolve(alert.id, actor=manager, note="  ", now=now)
    assert unresolved_alert(product.id).status == "open"



def test_alerts_keep_being_raised_on_a_long_lived_connection(database_url, now):
    """psycopg prepares a statement after 5 runs and PostgreSQL plans it generically after 5
    more: the partial-index ON CONFLICT must still find its index (a literal predicate, not a
    bound parameter). One pooled connection, so every statement runs on the same one."""
    one_connection = create_app(app_config(
        database_url, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}))
    try:
        with one_connection.app_context():
            product = services.create_product("LONG", "Long", actor=SYSTEM, now=now,
                                              on_hand=50, low_stock_threshold=3)
            for round_ in range(15):
                db.session.execute(db.text("UPDATE products SET on_hand = 0 WHERE id = :id"),
                                   {"id": product.id})
                db.session.commit()
                assert services.evaluate_alerts([product.id], now=now).opened == 1, round_
                services.adjust(product.sku, 50, reason="delivery", actor=SYSTEM, now=now)
                services.adjust(product.sku, -50, reason="oops", actor=SYSTEM, now=now)
                assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"
                services.adjust(product.sku, 50, reason="delivery", actor=SYSTEM, now=now)
            assert len(alerts_of(product.id)) == 30
            db.session.remove()
    finally:
        with one_connection.app_context():
            db.engine.dispose()


def test_lazy_expiry_then_reserve_leaves_an_acknowledged_alert_as_it_was(
        product_factory, manager, now):
    """Found by the stateful test: a reserve that first gives back overdue holds used to
    evaluate twice in one transaction (after the expiry, then after the hold), so an
    acknowledged OUT alert was resolved and a fresh one opened although the product was out
    of stock before and after. Alerts follow the transaction's net change."""
    product = product_factory(on_hand=2, threshold=1)
    services.reserve(product.sku, 2, SESSION, 60, now=now)
    out = unresolved_alert(product.id)
    services.acknowledge(out.id, actor=manager, now=now)

    later = now + timedelta(minutes=5)
    services.reserve(product.sku, 2, SESSION, 60, now=later)  # the overdue 2 come back first

    [only] = alerts_of(product.id)
    assert (only.id, only.kind, only.status) == (out.id, "OUT_OF_STOCK", "acknowledged")
    assert services.check() == []


def test_lazy_expiry_that_frees_the_product_resolves_its_alert(product_factory, now):
    """The other direction: overdue holds given back lift the product above its threshold
    even though the new hold takes a unit; the alert is resolved, not left behind."""
    product = product_factory(on_hand=5, threshold=1)
    services.reserve(product.sku, 5, SESSION, 60, now=now)
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"

    services.reserve(product.sku, 1, SESSION, 60, now=now + timedelta(minutes=5))

    assert unresolved_alert(product.id) is None
    assert services.check() == []


def test_a_refused_reserve_keeps_the_lazy_expiry_and_its_alert_change(product_factory, now):
    product = product_factory(on_hand=3, threshold=1)
    services.reserve(product.sku, 3, SESSION, 60, now=now)
    with pytest.raises(InsufficientStock):
        services.reserve(product.sku, 4, SESSION, 60, now=now + timedelta(minutes=5))

    assert unresolved_alert(product.id) is None  # 3 available again, above the threshold
    assert services.check() == []


def test_a_cart_hold_after_lazy_expiry_leaves_an_acknowledged_alert_as_it_was(
        product_factory, manager, now):
    product = product_factory(on_hand=2, threshold=1)
    services.reserve(product.sku, 2, SESSION, 60, now=now)
    out = unresolved_alert(product.id)
    services.acknowledge(out.id, actor=manager, now=now)
    cart_id = make_cart(now, {product.id: 2})

    services.reserve_cart(cart_id, 60, now=now + timedelta(minutes=5))

    [only] = alerts_of(product.id)
    assert (only.id, only.status) == (out.id, "acknowledged")
