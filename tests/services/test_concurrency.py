"""Real threads racing through the services: no oversell, no deadlock, one effect per hold.

Each thread has its own app context, so its own session and connection. PostgreSQL runs the
races wide (64 threads, row locks); SQLite runs the same races narrower, since it lets one
writer in at a time (BEGIN IMMEDIATE) and the point there is that nothing breaks.
"""
from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import CartItem, Reservation
from dashboard.services import SYSTEM, Owner
from dashboard.services.errors import InsufficientStock, ReservationNotActive
from tests.helpers.records import counters, make_cart
from tests.services.helpers import SESSION, ledger, race


def _unexpected(results, *allowed) -> list:
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]


def test_many_threads_reserving_one_unit_each_never_oversell(
    wide_app, threads, product_factory, now
):
    product = product_factory("HOT", on_hand=10, threshold=2)

    results = race(wide_app, threads, lambda i: services.reserve(
        "HOT", 1, Owner(session_key=f"s{i}"), now=now).id)

    held = [r for r in results if isinstance(r, int)]
    assert _unexpected(results, InsufficientStock) == []
    assert len(held) == 10
    assert all("only 0 available" in str(r) for r in results if isinstance(r, Exception))
    assert counters(product.id) == (10, 10)
    assert len(ledger(product.id, "reserve")) == 10
    assert services.check() == []


def test_concurrent_carts_with_overlapping_products_are_all_or_nothing(
    wide_app, is_postgres, product_factory, now
):
    rng = random.Random(20261121)
    products = [product_factory(f"OVL-{i}", on_hand=6, threshold=1).id for i in range(5)]
    carts = []
    for _ in range(32 if is_postgres else 12):
        chosen = rng.sample(products, rng.randint(2, 4))
        rng.shuffle(chosen)  # items added in random order; the service must lock by id
        carts.append(make_cart(now, {pid: rng.randint(1, 2) for pid in chosen}))

    results = race(wide_app, len(carts), lambda i: [
        (h.product_id, h.quantity) for h in services.reserve_cart(carts[i], now=now)])

    # A deadlock would surface here as an OperationalError (psycopg DeadlockDetected).
    assert _unexpected(results, InsufficientStock) == []
    succeeded = [r for r in results if isinstance(r, list)]
    assert succeeded, "at least one cart must get through"
    held = db.session.execute(
        select(Reservation.cart_id, Reservation.product_id, Reservation.quantity)
        .where(Reservation.status == "active")
    ).all()
    by_cart: dict[int, set] = {}
    for cart_id, pid, qty in held:
        by_cart.setdefault(cart_id, set()).add((pid, qty))
    for i, cart_id in enumerate(carts):
        wanted = set(db.session.execute(
            select(CartItem.product_id, CartItem.quantity).where(CartItem.cart_id == cart_id)
        ).all())
        got = by_cart.get(cart_id, set())
        assert got in (set(), wanted), f"cart {cart_id} half held: {got} of {wanted}"
        assert (got == wanted) == isinstance(results[i], list)
    per_product = Counter()
    for _cart, pid, qty in held:
        per_product[pid] += qty
    for pid in products:
        on_hand, reserved = counters(pid)
        assert reserved == per_product[pid] <= on_hand == 6
    assert services.check() == []


def test_release_racing_expiry_exactly_one_wins(wide_app, is_postgres, product_factory, now):
    product = product_factory(on_hand=100)
    later = now + timedelta(minutes=5)
    holds = []

    for _round in range(12 if is_postgres else 4):
        hold_id = services.reserve(product.sku, 1, SESSION, 60, now=now).id
        holds.append(hold_id)

        def work(i, hold_id=hold_id):
            if i == 0:
                return services.release(hold_id, actor=SYSTEM, reason="race", now=later).status
            return services.expire_due(later).holds

        released, expired = race(wide_app, 2, work)
        assert _unexpected([released], ReservationNotActive) == []
        assert not isinstance(expired, BaseException), expired
        release_won = released == "released"
        assert expired == (0 if release_won else 1), (released, expired)
        status = db.session.scalar(select(Reservation.status).where(Reservation.id == hold_id))
        assert status == ("released" if release_won else "expired")
        db.session.commit()

    ends = Counter(r.reservation_id for r in ledger(product.id)
                   if r.kind in ("release", "expire"))
    assert ends == {hold_id: 1 for hold_id in holds}
    assert counters(product.id) == (100, 0)
    assert services.check() == []


def test_the_same_release_sent_twice_has_one_effect(wide_app, is_postgres, product_factory, now):
    product = product_factory(on_hand=50)
    for _ in range(8 if is_postgres else 3):
        hold_id = services.reserve(product.sku, 2, SESSION, now=now).id
        results = race(wide_app, 2, lambda i, hold_id=hold_id: services.release(
            hold_id, actor=SYSTEM, reason="double click", now=now).status)
        assert sorted(map(type, results), key=str) == sorted(
            [str, ReservationNotActive], key=str), results
    assert counters(product.id) == (50, 0)
    assert len(ledger(product.id, "release")) == len(ledger(product.id, "reserve"))
    assert services.check() == []


def test_adjustments_racing_holds_never_go_below_held(wide_app, threads, product_factory, now):
    product = product_factory("MIX", on_hand=30, threshold=5)

    def work(i):
        if i % 4 == 0:
            return services.adjust("MIX", -3, reason="shrinkage", actor=SYSTEM, now=now).on_hand
        return services.reserve("MIX", 1, Owner(session_key=f"s{i}"), now=now).id

    results = race(wide_app, threads, work)

    assert _unexpected(results, InsufficientStock, services.errors.BelowHeld) == []
    on_hand, reserved = counters(product.id)
    assert 0 <= reserved <= on_hand
    assert reserved == len(ledger(product.id, "reserve"))
    assert services.check() == []
