"""Storefront clients are isolated: a client sees and acts only on the holds it made and
the carts and orders that are its storefront's; anything else is 404, exactly as an id
that does not exist. A client granted every storefront reaches them all."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Reservation, StockMovement
from dashboard.services import Owner
from tests.api.helpers import Api
from tests.helpers.records import make_cart, make_order

MISSING = 2**40


@pytest.fixture
def tee(product_factory):
    return product_factory("TEE-1", on_hand=50)


@pytest.fixture
def rival(app, now):
    client, token = services.create_api_client("rival shop", now=now)
    return client, Api(app.test_client(), token)


def _their_hold(api) -> int:
    response = api.post("/reservations", json={"sku": "TEE-1", "quantity": 1,
                                               "session_key": "secret-session",
                                               "customer_id": 4242})
    assert response.status_code == 201
    return response.get_json()["id"]


def _ledger() -> tuple[int, list]:
    db.session.expire_all()
    moves = db.session.scalar(select(func.count()).select_from(StockMovement))
    holds = db.session.execute(
        select(Reservation.id, Reservation.status, Reservation.expires_at).order_by(Reservation.id)
    ).all()
    return moves, holds


def _body_shape(response) -> tuple:
    body = response.get_json()
    return response.status_code, body["error"], sorted(body)


@pytest.mark.parametrize("call", [
    ("get", "/reservations/{id}", None),
    ("post", "/reservations/{id}/release", {}),
    ("post", "/reservations/{id}/commit", {}),
    ("post", "/reservations/{id}/extend", {"ttl_seconds": 600}),
])
def test_another_clients_hold_is_not_found_like_an_unknown_id(api, rival, tee, call):
    method, path, body = call
    held = _their_hold(api)
    before = _ledger()
    _, other = rival
    args = {} if body is None else {"json": body}
    theirs = getattr(other, method)(path.format(id=held), **args)
    unknown = getattr(other, method)(path.format(id=MISSING), **args)
    assert _body_shape(theirs) == _body_shape(unknown) == (404, "not_found", ["error", "message"])
    assert "secret-session" not in theirs.get_data(as_text=True)
    assert _ledger() == before
    assert api.get(f"/reservations/{held}").status_code == 200  # still the owner's


def test_holds_made_by_staff_belong_to_no_storefront(api, tee, now):
    staff_hold = services.reserve("TEE-1", 1, Owner(session_key="counter"), now=now)
    assert api.get(f"/reservations/{staff_hold.id}").status_code == 404
    assert api.post(f"/reservations/{staff_hold.id}/release", json={}).status_code == 404


def test_another_storefronts_cart_and_order_are_not_found(api, shop, rival, tee, now):
    rival_client, other = rival
    cart = make_cart(now, {tee.id: 1}, storefront=shop[0].id)
    order = make_order(now, {tee.id: 1}, storefront=shop[0].id)
    before = _ledger()
    for path in (f"/carts/{cart}/reserve", f"/orders/{order}/confirm", f"/orders/{order}/cancel"):
        theirs, unknown = other.post(path, json={}), other.post(path.replace(
            str(cart if "carts" in path else order), str(2**31 - 1)), json={})
        assert _body_shape(theirs) == _body_shape(unknown), path
        assert theirs.status_code == 404, path
    # Nor can a rival hold stock in the name of another storefront's cart or order.
    for owner in ({"cart_id": cart}, {"order_id": order}):
        refused = other.post("/reservations", json={"sku": "TEE-1", "quantity": 1, **owner})
        assert refused.status_code == 422 and "does not exist" in refused.get_json()["message"]
    assert _ledger() == before
    assert api.post(f"/carts/{cart}/reserve", json={}).status_code == 201


def test_a_client_granted_every_storefront_reaches_them_all(app, api, shop, tee, now):
    held = _their_hold(api)
    order = make_order(now, {tee.id: 1}, storefront=shop[0].id)
    hub_client, token = services.create_api_client("integration", now=now, all_storefronts=True)
    hub = Api(app.test_client(), token)
    assert hub.get(f"/reservations/{held}").status_code == 200
    assert hub.post(f"/orders/{order}/cancel", json={}).status_code == 200
    assert hub.post(f"/reservations/{held}/release", json={}).status_code == 200


def test_an_ended_hold_says_staff_not_who(api, shop, tee, staff_factory, now):
    held = _their_hold(api)
    support = staff_factory("support", email="sally.secret@example.com")
    services.release(held, actor=services.Actor.staff(support), reason="stuck", now=now)
    answer = api.post(f"/reservations/{held}/release", json={})
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["ended_by"] == "staff" and "by staff" in body["message"]
    assert "sally" not in answer.get_data(as_text=True).lower()
    assert "Support" not in body["message"]


def test_an_api_client_row_is_own_records_only_by_default(now):
    client, _ = services.create_api_client("plain", now=now)
    assert client.all_storefronts is False


def test_a_new_holds_ttl_is_bounded_by_the_extension_cap(api, app, tee):
    cap = app.config["HOLD_EXTEND_CAP"]
    refused = api.post("/reservations", json={"sku": "TEE-1", "quantity": 1,
                                              "session_key": "s", "ttl_seconds": 86400})
    assert refused.status_code == 422
    assert f"at most {cap}" in refused.get_json()["message"]
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    schema = document["components"]["schemas"]["NewReservation"]["properties"]["ttl_seconds"]
    assert schema["maximum"] == cap
