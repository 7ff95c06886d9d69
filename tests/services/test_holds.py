"""release / release_many / extend / commit and the orders that own holds (I6)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Order, Reservation
from dashboard.services import SYSTEM, Owner
from dashboard.services.errors import (
    ExtendBeyondCap,
    InvalidInput,
    NotFound,
    OrderNotCovered,
    OrderWrongState,
    ReservationNotActive,
)
from tests.helpers.records import counters, make_order
from tests.services.helpers import SESSION, ledger, snapshot, staff_actor


def _hold(hold_id: int) -> Reservation:
    return db.session.scalars(
        db.select(Reservation).where(Reservation.id == hold_id)
        .execution_options(populate_existing=True)
    ).one()


def test_release_gives_units_back_and_records_who_and_why(product_factory, staff_factory, now):
    support = staff_actor(staff_factory, "support", "support@example.com")
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 2, SESSION, now=now)

    services.release(hold.id, actor=support, reason="customer called", now=now)

    ended = _hold(hold.id)
    assert (ended.status, ended.ended_at, ended.end_reason) == ("released", now, "customer called")
    assert ended.ended_by_staff_id == support.id
    assert counters(product.id) == (5, 0)
    [row] = ledger(product.id, "release")
    assert (row.reserved_delta, row.actor_staff_id, row.reason) == (-2, support.id,
                                                                   "customer called")
    assert services.check() == []


def test_release_twice_changes_stock_once_and_says_who_released_it(
    product_factory, staff_factory, now
):
    support = staff_actor(staff_factory, "support", "support@example.com")
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 2, SESSION, now=now)
    at = now.replace(hour=14, minute=2)
    services.release(hold.id, actor=support, reason="stuck", now=at)
    before = snapshot()

    with pytest.raises(ReservationNotActive) as refused:
        services.release(hold.id, actor=SYSTEM, reason="again", now=at + timedelta(minutes=1))

    message = str(refused.value)
    assert "already released by staff" in message
    assert "14:02" in message
    assert refused.value.status == "released"
    assert refused.value.ended_by == "staff"
    assert refused.value.ended_at == at
    assert snapshot() == before


def test_committing_or_extending_an_ended_hold_says_why(product_factory, now):
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 1, SESSION, now=now)
    services.commit(hold.id, actor=SYSTEM, now=now)
    before = snapshot()
    with pytest.raises(ReservationNotActive, match="already committed by the system"):
        services.release(hold.id, actor=SYSTEM, reason="x", now=now)
    with pytest.raises(ReservationNotActive, match="already committed"):
        services.commit(hold.id, actor=SYSTEM, now=now)
    with pytest.raises(ReservationNotActive):
        services.extend(hold.id, now + timedelta(minutes=30), actor=SYSTEM, now=now)
    assert snapshot() == before


def test_release_of_unknown_hold_is_not_found(now):
    with pytest.raises(NotFound, match="hold 12345 does not exist"):
        services.release(12345, actor=SYSTEM, reason="x", now=now)


def test_release_many_releases_active_and_lists_the_rest(product_factory, now):
    product = product_factory(on_hand=10)
    a, b, c = (services.reserve(product.sku, 1, SESSION, now=now) for _ in range(3))
    services.release(b.id, actor=SYSTEM, reason="first", now=now)

    result = services.release_many([c.id, a.id, b.id, 999], actor=SYSTEM, reason="bulk",
                                   now=now)

    assert sorted(h.id for h in result.released) == [a.id, c.id]
    refused = dict(result.refused)
    assert set(refused) == {b.id, 999}
    assert "already released" in refused[b.id]
    assert "does not exist" in refused[999]
    assert counters(product.id) == (10, 0)
    assert services.check() == []


def test_release_many_needs_at_least_one_hold(now):
    with pytest.raises(InvalidInput, match="at least one"):
        services.release_many([], actor=SYSTEM, reason="bulk", now=now)


def test_commit_takes_units_out_of_on_hand_and_reserved(product_factory, now):
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 2, SESSION, now=now)
    services.commit(hold.id, actor=SYSTEM, now=now)
    assert _hold(hold.id).status == "committed"
    assert counters(product.id) == (3, 0)
    [row] = ledger(product.id, "commit")
    assert (row.on_hand_delta, row.reserved_delta) == (-2, -2)
    assert services.check() == []


def test_extend_moves_expiry_within_the_cap(app, product_factory, now):
    product = product_factory()
    hold = services.reserve(product.sku, 1, SESSION, 600, now=now)
    until = now + timedelta(minutes=30)
    services.extend(hold.id, until, actor=SYSTEM, reason="customer asked", now=now)
    assert _hold(hold.id).expires_at == until
    assert services.check() == []

    cap = now + timedelta(seconds=app.config["HOLD_EXTEND_CAP"])
    services.extend(hold.id, cap, actor=SYSTEM, now=now)
    before = snapshot()
    with pytest.raises(ExtendBeyondCap, match="at most until"):
        services.extend(hold.id, cap + timedelta(seconds=1), actor=SYSTEM, now=now)
    assert snapshot() == before


def test_extend_refuses_an_earlier_expiry_and_an_overdue_hold(product_factory, now):
    product = product_factory()
    hold = services.reserve(product.sku, 1, SESSION, 600, now=now)
    with pytest.raises(InvalidInput, match="later than the current"):
        services.extend(hold.id, now + timedelta(seconds=300), actor=SYSTEM, now=now)
    later = now + timedelta(seconds=601)
    with pytest.raises(InvalidInput, match="overdue"):
        services.extend(hold.id, later + timedelta(minutes=5), actor=SYSTEM, now=later)
    assert _hold(hold.id).expires_at == now + timedelta(seconds=600)


# --- orders -------------------------------------------------------------------------------


def test_confirm_order_commits_its_holds(product_factory, now):
    a, b = product_factory(on_hand=5), product_factory(on_hand=5)
    order_id = make_order(now, {a.id: 2, b.id: 1})
    services.reserve(a.sku, 2, Owner(order_id=order_id), now=now)
    services.reserve(b.sku, 1, Owner(order_id=order_id), now=now)

    order = services.confirm_order(order_id, actor=SYSTEM, now=now)

    assert order.status == "confirmed"
    assert counters(a.id) == (3, 0) and counters(b.id) == (4, 0)
    assert {r.order_id for r in ledger(kind="commit")} == {order_id}
    assert services.check() == []


def test_confirm_order_not_fully_held_is_refused(product_factory, now):
    a = product_factory("ORD-A", on_hand=5)
    order_id = make_order(now, {a.id: 2})
    services.reserve(a.sku, 1, Owner(order_id=order_id), now=now)
    before = snapshot()
    with pytest.raises(OrderNotCovered, match="ORD-A"):
        services.confirm_order(order_id, actor=SYSTEM, now=now)
    assert snapshot() == before
    assert db.session.get(Order, order_id).status == "pending"


def test_cancel_pending_order_releases_its_holds(product_factory, now):
    a = product_factory(on_hand=5)
    order_id = make_order(now, {a.id: 2})
    services.reserve(a.sku, 2, Owner(order_id=order_id), now=now)
    services.cancel_order(order_id, actor=SYSTEM, now=now)
    assert counters(a.id) == (5, 0)
    assert [r.reason for r in ledger(a.id, "release")] == [f"order {order_id} cancelled"]
    assert services.check() == []


def test_cancel_confirmed_order_returns_units_to_stock(product_factory, now):
    a = product_factory(on_hand=5)
    order_id = make_order(now, {a.id: 2})
    services.reserve(a.sku, 2, Owner(order_id=order_id), now=now)
    services.confirm_order(order_id, actor=SYSTEM, now=now)
    services.cancel_order(order_id, actor=SYSTEM, now=now, reason="customer changed mind")
    assert counters(a.id) == (5, 0)
    [row] = ledger(a.id, "receive")[1:]  # the first receive is the opening stock
    assert row.on_hand_delta == 2 and "returned to stock" in row.reason
    assert services.check() == []


def test_order_state_refusals(product_factory, now):
    a = product_factory(on_hand=5)
    shipped = make_order(now, {a.id: 1}, status="shipped")
    with pytest.raises(OrderWrongState, match="shipped and can no longer be cancelled"):
        services.cancel_order(shipped, actor=SYSTEM, now=now)
    with pytest.raises(OrderWrongState, match="not pending"):
        services.confirm_order(shipped, actor=SYSTEM, now=now)
    with pytest.raises(NotFound):
        services.confirm_order(777, actor=SYSTEM, now=now)
