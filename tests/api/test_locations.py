"""The storefront API with several locations (issue 15 item 7): per-location figures in
product answers, holds at a named or allocated location, refusals per location."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Reservation, StockLevel
from dashboard.services import SYSTEM
from dashboard.services.locations import create_location, find_location, update_location
from tests.helpers.records import make_cart
from tests.helpers.statements import statements


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code and body["message"]
    return body


@pytest.fixture
def shop_floor(now):
    """MAIN (priority 0) plus a store (priority 10) and a back office that does not sell."""
    create_location("STORE-1", "High Street", kind="store", priority=10, actor=SYSTEM, now=now)
    create_location("BACK", "Back office", sellable=False, priority=5, actor=SYSTEM, now=now)


def stock(product, at: dict[str, int], now) -> None:
    for code, units in at.items():
        services.adjust(product.id, units, reason="delivery", location=code, actor=SYSTEM,
                        now=now)


def level(product_id: int, code: str) -> tuple[int, int]:
    row = db.session.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
        StockLevel.product_id == product_id,
        StockLevel.location_id == find_location(code).id)).one()
    db.session.commit()
    return tuple(row)


def hold(sku: str, quantity: int, **more) -> dict:
    return {"sku": sku, "quantity": quantity, "session_key": "s-1", **more}


def test_product_answers_carry_each_open_location_in_priority_order(api, shop_floor,
                                                                    product_factory, now):
    tee = product_factory("TEE-1", on_hand=4)
    stock(tee, {"STORE-1": 6, "BACK": 2}, now)
    services.reserve(tee.id, 1, services.Owner(session_key="x"), location="STORE-1", now=now)
    closed = create_location("OLD", "Old shop", priority=1, actor=SYSTEM, now=now)
    update_location(closed, is_active=False, actor=SYSTEM, now=now)

    body = api.get("/products/TEE-1").get_json()
    assert (body["on_hand"], body["reserved"], body["available"]) == (12, 1, 11)
    assert body["locations"] == [
        {"location": "MAIN", "on_hand": 4, "reserved": 0, "available": 4},
        {"location": "BACK", "on_hand": 2, "reserved": 0, "available": 2},
        {"location": "STORE-1", "on_hand": 6, "reserved": 1, "available": 5},
    ]
    listed = api.get("/products").get_json()["products"]
    assert [p["locations"] for p in listed] == [body["locations"]]


def test_a_catalogue_page_reads_its_levels_in_one_query(api, shop_floor, product_factory):
    for n in range(5):
        product_factory(f"P-{n}", on_hand=n)
    with statements(db.engine) as seen:
        page = api.get("/products?limit=5").get_json()["products"]
    assert [p["locations"][0]["on_hand"] for p in page] == [0, 1, 2, 3, 4]
    assert all(len(p["locations"]) == 3 for p in page)
    assert sum("stock_levels" in s for s in seen.statements) == 1


def test_reserve_at_a_named_location_any_case(api, shop_floor, product_factory, now):
    tee = product_factory("TEE-1", on_hand=5)
    stock(tee, {"STORE-1": 5}, now)
    response = api.post("/reservations", hold("TEE-1", 3, location="store-1"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["location"] == "STORE-1"
    assert level(tee.id, "STORE-1") == (5, 3) and level(tee.id, "MAIN") == (5, 0)
    assert api.get(f"/reservations/{body['id']}").get_json()["location"] == "STORE-1"
    released = api.post(f"/reservations/{body['id']}/release").get_json()
    assert released["location"] == "STORE-1" and level(tee.id, "STORE-1") == (5, 0)


def test_without_a_location_the_first_by_priority_that_covers_it_takes_it(
        api, shop_floor, product_factory, now):
    tee = product_factory("TEE-1", on_hand=2)
    stock(tee, {"STORE-1": 5, "BACK": 50}, now)
    first = api.post("/reservations", hold("TEE-1", 2)).get_json()
    second = api.post("/reservations", hold("TEE-1", 2)).get_json()
    assert (first["location"], second["location"]) == ("MAIN", "STORE-1")  # BACK never sells


def test_most_available_first_when_the_shop_chooses_it(app, api, shop_floor, product_factory,
                                                       now):
    tee = product_factory("TEE-1", on_hand=3)
    stock(tee, {"STORE-1": 7}, now)
    app.config["HOLD_ALLOCATION"] = "most_available"
    try:
        body = api.post("/reservations", hold("TEE-1", 1)).get_json()
    finally:
        app.config["HOLD_ALLOCATION"] = "priority"
    assert body["location"] == "STORE-1"


def test_no_one_location_covers_it_409_says_what_each_has(api, shop_floor, product_factory,
                                                          now):
    tee = product_factory("TEE-1", on_hand=2)
    stock(tee, {"STORE-1": 3}, now)
    body = assert_error(api.post("/reservations", hold("TEE-1", 4)), 409, "insufficient_stock")
    assert body["available"] == 5 and body["sku"] == "TEE-1"
    assert body["locations"] == [{"location": "MAIN", "available": 2},
                                 {"location": "STORE-1", "available": 3}]
    named = assert_error(api.post("/reservations", hold("TEE-1", 3, location="MAIN")), 409,
                         "insufficient_stock")
    assert named["locations"] == [{"location": "MAIN", "available": 2}]
    assert db.session.scalar(select(Reservation.id)) is None


def test_unknown_closed_or_not_selling_location_is_refused(api, shop_floor, product_factory,
                                                          now):
    product_factory("TEE-1", on_hand=5)
    closed = create_location("OLD", "Old shop", actor=SYSTEM, now=now)
    update_location(closed, is_active=False, actor=SYSTEM, now=now)
    assert_error(api.post("/reservations", hold("TEE-1", 1, location="NOPE")), 404,
                 "unknown_location")
    assert_error(api.post("/reservations", hold("TEE-1", 1, location="x" * 21)), 422, "invalid")
    old = assert_error(api.post("/reservations", hold("TEE-1", 1, location="old")), 422,
                       "invalid")
    assert "OLD is closed" in old["fields"]["location"]
    back = assert_error(api.post("/reservations", hold("TEE-1", 1, location="BACK")), 422,
                        "invalid")
    assert "BACK does not sell" in back["fields"]["location"]
    assert db.session.scalar(select(Reservation.id)) is None


def test_a_replayed_reserve_names_the_same_location(api, shop_floor, product_factory, now):
    tee = product_factory("TEE-1", on_hand=0)
    stock(tee, {"STORE-1": 4}, now)
    first = api.post("/reservations", hold("TEE-1", 2), key="k-1")
    # MAIN now has units: a fresh call would land there, the replay must not move.
    stock(tee, {"MAIN": 9}, now)
    again = api.post("/reservations", hold("TEE-1", 2), key="k-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json() and first.get_json()["location"] == "STORE-1"
    assert level(tee.id, "STORE-1") == (4, 2) and level(tee.id, "MAIN") == (9, 0)


def test_a_cart_lands_at_two_locations(api, shop, shop_floor, product_factory, now):
    a, b = product_factory("A-1", on_hand=5), product_factory("B-1", on_hand=0)
    stock(b, {"STORE-1": 3}, now)
    cart_id = make_cart(now, {a.id: 2, b.id: 3}, storefront=shop[0].id)
    with statements(db.engine) as seen:
        response = api.post(f"/carts/{cart_id}/reserve")
    assert response.status_code == 201, response.get_json()
    assert sorted((h["sku"], h["location"]) for h in response.get_json()) == [
        ("A-1", "MAIN"), ("B-1", "STORE-1")]
    assert not any(s.lstrip().startswith("SELECT locations") for s in seen.statements)
    assert level(a.id, "MAIN") == (5, 2) and level(b.id, "STORE-1") == (3, 3)


def test_a_short_cart_line_says_what_each_location_has(api, shop, shop_floor, product_factory,
                                                      now):
    a = product_factory("A-1", on_hand=1)
    stock(a, {"STORE-1": 1}, now)
    cart_id = make_cart(now, {a.id: 2}, storefront=shop[0].id)
    body = assert_error(api.post(f"/carts/{cart_id}/reserve"), 409, "insufficient_stock")
    assert body["short"] == [{"sku": "A-1", "requested": 2, "available": 1, "locations": [
        {"location": "MAIN", "available": 1}, {"location": "STORE-1", "available": 1}]}]
