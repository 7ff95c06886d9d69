"""What the one-statement storefront calls (issue 12: a CTE each on PostgreSQL) must keep:
the ledger line of every change with its own before/after, the hold the caller gets back
equal to the row the database holds, refusals exactly as the general path gives them,
alerts evaluated when the level can have changed, and no oversell under real threads.

The same tests run on SQLite (the multi-statement path), which must behave the same.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, Reservation
from dashboard.services import SYSTEM, Actor, Owner
from dashboard.services.errors import (
    ExtendBeyondCap,
    InactiveProduct,
    InsufficientStock,
    InvalidInput,
    NotFound,
    ReservationNotActive,
    UnknownProduct,
)
from tests.helpers.records import counters, make_order
from tests.services.helpers import SESSION, ledger, race, snapshot, unresolved_alert


@pytest.fixture
def storefronts(now):
    """Two storefronts' actors: a hold made by one does not exist for the other."""
    shop, _ = services.create_api_client("shop", now=now)
    other, _ = services.create_api_client("other shop", now=now)
    return Actor.api(shop), Actor.api(other)


def _stored(hold_id: int) -> Reservation:
    return db.session.scalars(
        select(Reservation).where(Reservation.id == hold_id)
        .execution_options(populate_existing=True)
    ).one()


def _hold_fields(hold: Reservation) -> tuple:
    return (hold.id, hold.product_id, hold.quantity, hold.status, hold.created_at,
            hold.expires_at, hold.ended_at, hold.end_reason, hold.session_key,
            hold.customer_id, hold.cart_id, hold.order_id, hold.ended_by_staff_id,
            hold.ended_by_api_client_id, hold.created_by_api_client_id)


def test_each_reserve_writes_its_own_ledger_line_with_the_figures_after_it(
    product_factory, storefronts, now
):
    shop, _ = storefronts
    product = product_factory(on_hand=20, threshold=0)
    order_id = make_order(now, {product.id: 1}, storefront=shop.id)
    holds = [services.reserve(product.sku, q, Owner(session_key="s", order_id=order_id),
                              actor=shop, now=now) for q in (1, 4, 2)]
    holds.append(services.reserve(product.id, 3, SESSION, actor=shop, now=now))

    rows = ledger(product.id, "reserve")
    assert [(r.reservation_id, r.reserved_delta, r.on_hand_delta, r.on_hand_after,
             r.reserved_after) for r in rows] == [
        (holds[0].id, 1, 0, 20, 1), (holds[1].id, 4, 0, 20, 5), (holds[2].id, 2, 0, 20, 7),
        (holds[3].id, 3, 0, 20, 10)]
    assert {(r.actor_api_client_id, r.actor_staff_id, r.created_at) for r in rows} == {
        (shop.id, None, now)}
    assert [r.order_id for r in rows] == [order_id] * 3 + [None]
    assert rows[0].reason == f"held for order {order_id}, session s"
    assert counters(product.id) == (20, 10)
    assert services.check() == []


def test_the_hold_returned_is_the_row_the_database_holds(product_factory, storefronts, now):
    shop, _ = storefronts
    sku = product_factory(on_hand=9).sku
    made = services.reserve(sku, 2, Owner(customer_id=77, session_key="k"), 120, actor=shop,
                            now=now)
    made_fields = _hold_fields(made)
    assert made_fields == _hold_fields(_stored(made.id))

    ended = services.commit(made.id, actor=shop, now=now + timedelta(seconds=5),
                            reason="paid")
    ended_fields = _hold_fields(ended)
    assert ended.product.sku == sku  # the answer needs the SKU: it came with the hold
    stored = _stored(made.id)
    assert ended_fields == _hold_fields(stored)
    assert (stored.status, stored.ended_at, stored.end_reason, stored.ended_by_api_client_id
            ) == ("committed", now + timedelta(seconds=5), "paid", shop.id)


def test_release_and_commit_write_the_ledger_line_with_the_figures_after_them(
    product_factory, staff_factory, now
):
    support = Actor.staff(staff_factory("support", email="support@example.com"))
    product = product_factory(on_hand=10, threshold=0)
    order_id = make_order(now, {product.id: 3})
    sold = services.reserve(product.sku, 3, Owner(order_id=order_id), now=now).id
    kept = services.reserve(product.sku, 2, SESSION, now=now).id

    services.commit(sold, actor=SYSTEM, now=now)
    services.release(kept, actor=support, reason="customer called", now=now)

    commit_row, = ledger(product.id, "commit")
    release_row, = ledger(product.id, "release")
    assert (commit_row.reservation_id, commit_row.on_hand_delta, commit_row.reserved_delta,
            commit_row.on_hand_after, commit_row.reserved_after, commit_row.order_id,
            commit_row.reason, commit_row.actor_staff_id) == (sold, -3, -3, 7, 2, order_id,
                                                              "sold", None)
    assert (release_row.reservation_id, release_row.on_hand_delta, release_row.reserved_delta,
            release_row.on_hand_after, release_row.reserved_after, release_row.order_id,
            release_row.reason, release_row.actor_staff_id) == (
        kept, 0, -2, 7, 0, None, "customer called", support.id)
    assert _stored(kept).ended_by_staff_id == support.id
    assert counters(product.id) == (7, 0)
    assert services.check() == []


def test_ending_a_hold_the_session_already_holds_updates_that_object(product_factory, now):
    hold = services.reserve(product_factory(on_hand=4).sku, 1, SESSION, now=now)
    db.session.commit()
    ended = services.release(hold.id, actor=SYSTEM, reason="changed mind", now=now)
    assert ended is hold
    assert (hold.status, hold.end_reason, hold.ended_at) == ("released", "changed mind", now)


def test_another_storefronts_hold_does_not_exist_for_release_commit_or_extend(
    product_factory, storefronts, now
):
    shop, other = storefronts
    product = product_factory(on_hand=5)
    hold_id = services.reserve(product.sku, 2, SESSION, actor=shop, now=now).id
    before = snapshot()
    for call in (
        lambda: services.release(hold_id, actor=other, reason="not mine", now=now),
        lambda: services.commit(hold_id, actor=other, now=now),
        lambda: services.extend(hold_id, now + timedelta(minutes=5), actor=other, now=now),
    ):
        with pytest.raises(NotFound, match=f"hold {hold_id} does not exist"):
            call()
        db.session.rollback()
    assert snapshot() == before
    granted, _ = services.create_api_client("every shop", now=now, all_storefronts=True)
    services.release(hold_id, actor=Actor.api(granted), reason="support", now=now)
    assert counters(product.id) == (5, 0)


def test_an_ended_hold_is_refused_with_who_ended_it_and_nothing_changes(
    product_factory, storefronts, now
):
    shop, _ = storefronts
    hold_id = services.reserve(product_factory(on_hand=5).sku, 2, SESSION, actor=shop,
                               now=now).id
    services.release(hold_id, actor=shop, reason="gone", now=now)
    before = snapshot()
    for call in (
        lambda: services.release(hold_id, actor=shop, reason="again", now=now),
        lambda: services.commit(hold_id, actor=shop, now=now),
        lambda: services.extend(hold_id, now + timedelta(minutes=5), actor=shop, now=now),
    ):
        with pytest.raises(ReservationNotActive,
                           match=f"hold {hold_id} was already released by a storefront"):
            call()
        db.session.rollback()
    assert snapshot() == before


def test_extend_refusals_are_the_rules_of_the_general_path(app, product_factory, now):
    cap = app.config["HOLD_EXTEND_CAP"]
    hold = services.reserve(product_factory(on_hand=5).sku, 1, SESSION, 60, now=now)
    hold_id, expires_at = hold.id, hold.expires_at
    with pytest.raises(ExtendBeyondCap):
        services.extend(hold_id, now + timedelta(seconds=cap + 1), actor=SYSTEM, now=now)
    db.session.rollback()
    with pytest.raises(InvalidInput, match="later than the current one"):
        services.extend(hold_id, expires_at, actor=SYSTEM, now=now)
    db.session.rollback()
    with pytest.raises(InvalidInput, match="overdue"):
        services.extend(hold_id, now + timedelta(seconds=cap - 1), actor=SYSTEM,
                        now=now + timedelta(seconds=60))
    db.session.rollback()
    assert _stored(hold_id).expires_at == expires_at
    # Exactly at the cap is allowed.
    services.extend(hold_id, now + timedelta(seconds=cap), actor=SYSTEM, now=now)
    assert _stored(hold_id).expires_at == now + timedelta(seconds=cap)


def test_reserve_refusals_by_id_and_by_sku_name_the_reason(product_factory, now):
    product = product_factory(on_hand=3)
    gone = product_factory(on_hand=3)
    services.update_product(gone.id, is_active=False, actor=SYSTEM, now=now)
    before = snapshot()
    for key in (product.id, product.sku):
        with pytest.raises(InsufficientStock, match="only 3 available") as refused:
            services.reserve(key, 4, SESSION, now=now)
        assert refused.value.details["available"] == 3
    for key in (gone.id, gone.sku):
        with pytest.raises(InactiveProduct, match="inactive"):
            services.reserve(key, 1, SESSION, now=now)
    for key in (999_999, "NO-SUCH-SKU"):
        with pytest.raises(UnknownProduct):
            services.reserve(key, 1, SESSION, now=now)
    db.session.rollback()
    assert snapshot() == before


def test_alerts_follow_reserve_release_and_commit(product_factory, now):
    product = product_factory(on_hand=10, threshold=4)
    first = services.reserve(product.sku, 6, SESSION, now=now).id  # 4 left: low
    assert unresolved_alert(product.id).kind == "LOW_STOCK"
    second = services.reserve(product.sku, 4, SESSION, now=now).id  # 0 left: out
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"
    services.commit(second, actor=SYSTEM, now=now)  # on hand 6, still 0 available
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"
    services.release(first, actor=SYSTEM, reason="back", now=now)  # 6 available: recovered
    assert unresolved_alert(product.id) is None
    assert services.check() == []


def test_a_release_above_the_threshold_re_arms_a_muted_product(product_factory, staff_factory,
                                                                now):
    manager = Actor.staff(staff_factory("manager", email="manager@example.com"))
    product = product_factory(on_hand=10, threshold=4)
    hold_id = services.reserve(product.sku, 7, SESSION, now=now).id
    services.resolve(unresolved_alert(product.id).id, actor=manager, note="on order", now=now)
    assert _muted(product.id)
    services.release(hold_id, actor=SYSTEM, reason="back", now=now)  # 10 available
    assert not _muted(product.id)


def _muted(product_id: int) -> bool:
    muted = db.session.scalar(select(Product.alert_muted).where(Product.id == product_id))
    db.session.commit()
    return muted


def test_threads_reserving_one_product_never_oversell_and_each_line_is_its_own(
    wide_app, is_postgres, product_factory, now
):
    product = product_factory("ONE", on_hand=20, threshold=0)
    n = 32 if is_postgres else 12
    results = race(wide_app, n, lambda i: services.reserve(
        "ONE", 1, Owner(session_key=f"t{i}"), now=now).id)

    held = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, InsufficientStock)]
    assert len(held) + len(refused) == n, [r for r in results if isinstance(r, Exception)]
    assert len(held) == min(20, n)
    rows = ledger(product.id, "reserve")
    assert sorted(r.reserved_after for r in rows) == list(range(1, len(held) + 1))
    assert sorted(r.reservation_id for r in rows) == sorted(held)
    assert counters(product.id) == (20, len(held))
    assert services.check() == []


def test_threads_ending_the_same_holds_end_each_exactly_once(
    wide_app, is_postgres, product_factory, now
):
    product = product_factory(on_hand=50, threshold=0)
    holds = [services.reserve(product.sku, 2, SESSION, now=now).id
             for _ in range(8 if is_postgres else 3)]
    ends = [(services.release, {"reason": "race"}), (services.commit, {})]

    def work(i):
        call, extra = ends[i % 2]
        return call(holds[i // 4], actor=SYSTEM, now=now, **extra).status

    results = race(wide_app, 4 * len(holds), work)
    assert [r for r in results if isinstance(r, BaseException)
            and not isinstance(r, ReservationNotActive)] == []
    assert len([r for r in results if isinstance(r, str)]) == len(holds)
    ended = Counter(r.reservation_id for r in ledger(product.id)
                    if r.kind in ("release", "commit"))
    assert ended == {hold_id: 1 for hold_id in holds}
    committed = sum(1 for r in ledger(product.id, "commit"))
    assert counters(product.id) == (50 - 2 * committed, 0)
    assert services.check() == []
