"""reserve / reserve_cart: the conditional update, the ledger, lazy expiry, idempotency."""
from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Reservation
from dashboard.services import SYSTEM, Actor, Owner
from dashboard.services.errors import (
    InactiveProduct,
    InsufficientStock,
    InvalidInput,
    NotFound,
    UnknownProduct,
)
from tests.helpers.records import counters, make_cart
from tests.services.helpers import SESSION, ledger, snapshot


def test_reserve_holds_units_and_writes_one_ledger_row(product_factory, now):
    product = product_factory(on_hand=10)
    hold = services.reserve(product.sku, 3, Owner(customer_id=42), 300, now=now)

    assert (hold.status, hold.quantity, hold.customer_id) == ("active", 3, 42)
    assert hold.expires_at == now + timedelta(seconds=300)
    assert counters(product.id) == (10, 3)
    [row] = ledger(product.id, "reserve")
    assert (row.reserved_delta, row.on_hand_delta) == (3, 0)
    assert (row.on_hand_after, row.reserved_after) == (10, 3)
    assert row.reservation_id == hold.id
    assert "customer 42" in row.reason
    assert services.check() == []


def test_reserve_by_id_and_by_object(product_factory, now):
    product = product_factory(on_hand=5)
    services.reserve(product.id, 1, SESSION, now=now)
    services.reserve(product, 1, SESSION, now=now)
    assert counters(product.id) == (5, 2)


def test_reserve_uses_default_ttl(app, product_factory, now):
    product = product_factory()
    hold = services.reserve(product.sku, 1, SESSION, now=now)
    assert hold.expires_at == now + timedelta(seconds=app.config["HOLD_TTL_DEFAULT"])


def test_api_client_is_recorded_as_the_actor(product_factory, now):
    client, _token = services.create_api_client("storefront", now=now)
    product = product_factory()
    hold = services.reserve(product.sku, 1, SESSION, actor=Actor.api(client), now=now)
    assert hold.created_by_api_client_id == client.id
    [row] = ledger(product.id, "reserve")
    assert (row.actor_api_client_id, row.actor_staff_id) == (client.id, None)


def test_reserve_refuses_more_than_available_and_says_how_many(product_factory, now):
    product = product_factory(on_hand=5)
    services.reserve(product.sku, 2, SESSION, now=now)
    before = snapshot()

    with pytest.raises(InsufficientStock) as refused:
        services.reserve(product.sku, 4, SESSION, now=now)

    assert refused.value.available == 3
    assert "only 3 available" in str(refused.value)
    assert refused.value.http_status == 409
    assert snapshot() == before


def test_available_is_never_clamped(product_factory, now):
    product = product_factory(on_hand=4)
    services.reserve(product.sku, 4, SESSION, now=now)
    with pytest.raises(InsufficientStock, match="only 0 available"):
        services.reserve(product.sku, 1, SESSION, now=now)
    assert counters(product.id) == (4, 4)


def test_reserve_unknown_sku_is_refused(product_factory, now):
    product_factory()
    with pytest.raises(UnknownProduct, match="no product with SKU 'NOPE'"):
        services.reserve("NOPE", 1, SESSION, now=now)


def test_reserve_inactive_product_is_refused(product_factory, now):
    product = product_factory()
    services.update_product(product.sku, is_active=False, actor=SYSTEM, now=now)
    before = snapshot()
    with pytest.raises(InactiveProduct, match="inactive"):
        services.reserve(product.sku, 1, SESSION, now=now)
    assert snapshot() == before


def test_lazy_expiry_gives_back_overdue_stock_so_reserve_succeeds(product_factory, now):
    product = product_factory(on_hand=3)
    old = services.reserve(product.sku, 3, SESSION, 60, now=now)
    later = now + timedelta(seconds=61)

    hold = services.reserve(product.sku, 2, Owner(session_key="sess-2"), now=later)

    assert hold.status == "active"
    assert counters(product.id) == (3, 2)
    [expired] = ledger(product.id, "expire")
    assert expired.reservation_id == old.id
    assert expired.reserved_delta == -3
    assert (expired.actor_staff_id, expired.actor_api_client_id) == (None, None)
    gone = db.session.get(Reservation, old.id)
    db.session.refresh(gone)
    assert (gone.status, gone.ended_at) == ("expired", later)
    assert services.check() == []


def test_lazy_expiry_is_kept_even_when_the_reserve_is_still_refused(product_factory, now):
    product = product_factory(on_hand=3)
    services.reserve(product.sku, 1, SESSION, 60, now=now)
    services.reserve(product.sku, 2, SESSION, 3600, now=now)
    later = now + timedelta(seconds=61)

    with pytest.raises(InsufficientStock, match="only 1 available"):
        services.reserve(product.sku, 2, SESSION, now=later)

    assert counters(product.id) == (3, 2)
    assert len(ledger(product.id, "expire")) == 1
    assert services.check() == []


def test_holds_not_yet_due_are_not_expired_lazily(product_factory, now):
    product = product_factory(on_hand=2)
    services.reserve(product.sku, 2, SESSION, 60, now=now)
    with pytest.raises(InsufficientStock):
        services.reserve(product.sku, 1, SESSION, now=now + timedelta(seconds=59))
    assert ledger(product.id, "expire") == []


def test_reserve_with_cart_and_order_owners(product_factory, now):
    product = product_factory(on_hand=5)
    cart_id = make_cart(now, {product.id: 1})
    hold = services.reserve(product.sku, 1, Owner(cart_id=cart_id), now=now)
    assert hold.cart_id == cart_id
    with pytest.raises(InvalidInput, match="cart 999 does not exist"):
        services.reserve(product.sku, 1, Owner(cart_id=999), now=now)
    with pytest.raises(InvalidInput, match="order 999 does not exist"):
        services.reserve(product.sku, 1, Owner(order_id=999), now=now)


# --- carts -------------------------------------------------------------------------------


def test_reserve_cart_holds_every_item(product_factory, now):
    a, b = product_factory(on_hand=5), product_factory(on_hand=5)
    cart_id = make_cart(now, {a.id: 2, b.id: 3})

    holds = services.reserve_cart(cart_id, now=now)

    assert sorted((h.product_id, h.quantity) for h in holds) == [(a.id, 2), (b.id, 3)]
    assert all(h.cart_id == cart_id and h.customer_id == 7 for h in holds)
    assert counters(a.id) == (5, 2) and counters(b.id) == (5, 3)
    assert services.check() == []


def test_reserve_cart_is_all_or_nothing_and_names_short_skus(product_factory, now):
    a = product_factory("CART-A", on_hand=5)
    b = product_factory("CART-B", on_hand=1)
    cart_id = make_cart(now, {a.id: 2, b.id: 3})
    before = snapshot()

    with pytest.raises(InsufficientStock) as refused:
        services.reserve_cart(cart_id, now=now)

    assert "CART-B (only 1 available)" in str(refused.value)
    assert "CART-A" not in str(refused.value)
    assert refused.value.details["short"] == [{"sku": "CART-B", "requested": 3, "available": 1,
                                                "locations": [{"location": "MAIN", "available": 1}]}]
    assert snapshot() == before


def test_reserve_cart_uses_overdue_stock(product_factory, now):
    a = product_factory(on_hand=2)
    services.reserve(a.sku, 2, SESSION, 60, now=now)
    cart_id = make_cart(now, {a.id: 2})
    holds = services.reserve_cart(cart_id, now=now + timedelta(minutes=5))
    assert [h.quantity for h in holds] == [2]
    assert len(ledger(a.id, "expire")) == 1
    assert services.check() == []


def test_reserve_cart_refusals(product_factory, now):
    with pytest.raises(NotFound, match="cart 4242 does not exist"):
        services.reserve_cart(4242, now=now)
    empty = make_cart(now, {})
    with pytest.raises(InvalidInput, match="empty"):
        services.reserve_cart(empty, now=now)
    inactive = product_factory("GONE", on_hand=5)
    services.update_product(inactive.sku, is_active=False, actor=SYSTEM, now=now)
    cart_id = make_cart(now, {inactive.id: 1})
    with pytest.raises(InsufficientStock, match="GONE"):
        services.reserve_cart(cart_id, now=now)
