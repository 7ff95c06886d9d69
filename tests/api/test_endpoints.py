"""The storefront API (SPEC §7) through the Flask test client: each call, each refusal."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from dashboard import services
from dashboard.api.idempotency import request_hash
from dashboard.extensions import db
from dashboard.models import ApiClient, IdempotencyKey, Order, Reservation, StockMovement
from dashboard.services import SYSTEM, Owner
from dashboard.services.housekeeping import prune_idempotency_keys
from tests.api.helpers import Api
from tests.helpers.records import counters, make_cart, make_order
from tests.helpers.web import login, new_client


@pytest.fixture
def tee(product_factory):
    return product_factory("TEE-1", on_hand=10)


def hold_body(**overrides):
    body = {"sku": "TEE-1", "quantity": 2, "session_key": "sess-1"}
    body.update(overrides)
    return body


def holds_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(Reservation))
    db.session.commit()
    return count


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    return body


# --- tokens -----------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic abc", "Bearer sr_nope",
                                    "Bearer " + "x" * 5000, "bearer sr_\u00e9"])
def test_missing_or_bad_token_is_401_with_challenge(app, tee, header):
    headers = {"Authorization": header} if header is not None else {}
    response = app.test_client().get("/api/v1/products/TEE-1", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_deactivated_client_is_refused(api, shop, tee):
    assert api.get("/products/TEE-1").status_code == 200
    services.set_api_client_active(shop[0].id, False)
    assert_error(api.get("/products/TEE-1"), 401, "unauthorized")
    assert_error(api.post("/reservations", hold_body()), 401, "unauthorized")
    assert holds_count() == 0


def test_last_used_is_written_at_most_once_a_minute(api, shop, tee):
    def last_used():
        value = db.session.scalar(select(ApiClient.last_used_at).where(ApiClient.id == shop[0].id))
        db.session.commit()
        return value

    assert last_used() is None
    api.get("/products/TEE-1")
    first = last_used()
    assert first is not None and abs(datetime.now(timezone.utc) - first) < timedelta(seconds=30)
    api.get("/products/TEE-1")
    assert last_used() == first  # within the minute: no write
    db.session.execute(update(ApiClient).values(last_used_at=first - timedelta(minutes=2)))
    db.session.commit()
    api.get("/products/TEE-1")
    assert last_used() > first


def test_openapi_and_ping_need_no_token(app):
    client = app.test_client()
    assert client.get("/api/v1/ping").get_json() == {}
    assert client.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.")


# --- products ---------------------------------------------------------------------------

def test_product_shows_its_figures(api, tee, now):
    services.reserve(tee.id, 3, Owner(session_key="x"), now=now)
    response = api.get("/products/TEE-1")
    assert response.status_code == 200
    assert response.get_json() == {
        "sku": "TEE-1", "name": "Product TEE-1", "on_hand": 10, "reserved": 3, "available": 7,
        "locations": [{"location": "MAIN", "on_hand": 10, "reserved": 3, "available": 7}],
        "low_stock_threshold": 2, "is_active": True,
    }


def test_product_sku_may_contain_a_slash(api, product_factory):
    product_factory("TEE/RED", on_hand=1)
    assert api.get("/products/TEE/RED").get_json()["sku"] == "TEE/RED"


@pytest.mark.parametrize("sku", ["NOPE", "%00", "x" * 5000, "%F0%9F%91%95", "TEE-1%20"])
def test_unknown_product_is_404(api, tee, sku):
    assert_error(api.get("/products/" + sku), 404, "unknown_sku")


# --- reserve ----------------------------------------------------------------------------

def test_reserve_answers_201_and_records_the_client_as_actor(api, shop, tee):
    response = api.post("/reservations", hold_body(ttl_seconds=600, customer_id=42))
    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in ("sku", "quantity", "status", "session_key", "customer_id")} == {
        "sku": "TEE-1", "quantity": 2, "status": "active", "session_key": "sess-1",
        "customer_id": 42}
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(seconds=600)
    hold = db.session.get(Reservation, body["id"])
    assert hold.created_by_api_client_id == shop[0].id
    move = db.session.scalars(
        select(StockMovement).where(StockMovement.reservation_id == hold.id)).one()
    assert (move.kind, move.actor_api_client_id, move.actor_staff_id) == ("reserve", shop[0].id, None)
    assert counters(tee.id) == (10, 2)


def test_reserve_without_ttl_uses_the_default(app, api, tee):
    body = api.post("/reservations", hold_body()).get_json()
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"])
    assert lifetime == timedelta(seconds=app.config["HOLD_TTL_DEFAULT"])


def test_reserve_more_than_available_is_409_with_available(api, tee):
    api.post("/reservations", hold_body(quantity=7))
    body = assert_error(api.post("/reservations", hold_body(quantity=4)), 409,
                        "insufficient_stock")
    assert body["available"] == 3
    assert counters(tee.id) == (10, 7)


def test_reserve_unknown_or_inactive_sku_is_404(api, tee, now):
    assert_error(api.post("/reservations", hold_body(sku="NOPE")), 404, "unknown_sku")
    services.update_product(tee, actor=SYSTEM, now=now, is_active=False)
    assert_error(api.post("/reservations", hold_body()), 404, "inactive_sku")
    assert holds_count() == 0


def test_reserve_with_a_cart_or_order_owner(api, shop, tee, now):
    cart_id = make_cart(now, {tee.id: 1}, storefront=shop[0].id)
    order_id = make_order(now, {tee.id: 1}, storefront=shop[0].id)
    body = api.post("/reservations", {"sku": "TEE-1", "quantity": 1, "cart_id": cart_id,
                                      "order_id": order_id}).get_json()
    assert (body["cart_id"], body["order_id"]) == (cart_id, order_id)
    refused = assert_error(api.post("/reservations", hold_body(cart_id=cart_id + 100)), 422,
                           "invalid")
    assert "cart_id" in refused["fields"]


@pytest.mark.parametrize("body, fields", [
    ({}, {"sku", "quantity", "owner"}),
    ({"sku": "TEE-1", "quantity": 1}, {"owner"}),
    (hold_body(quantity=0), {"quantity"}),
    (hold_body(quantity=-1), {"quantity"}),
    (hold_body(quantity=10_001), {"quantity"}),
    (hold_body(quantity=10**40), {"quantity"}),
    (hold_body(quantity=1.5), {"quantity"}),
    (hold_body(quantity="2"), {"quantity"}),
    (hold_body(quantity=True), {"quantity"}),
    (hold_body(quantity=None), {"quantity"}),
    (hold_body(quantity=[1]), {"quantity"}),
    (hold_body(ttl_seconds=59), {"ttl_seconds"}),
    (hold_body(ttl_seconds=86_401), {"ttl_seconds"}),
    (hold_body(sku=""), {"sku"}),
    (hold_body(sku="   "), {"sku"}),
    (hold_body(sku=None), {"sku"}),
    (hold_body(sku=12), {"sku"}),
    (hold_body(sku="x" * 101), {"sku"}),
    (hold_body(session_key="k" * 41), {"session_key"}),
    (hold_body(session_key="a\u0000b"), {"session_key"}),
    (hold_body(customer_id=0), {"customer_id"}),
    (hold_body(customer_id=2**63), {"customer_id"}),
    (hold_body(cart_id=2**31), {"cart_id"}),
    (hold_body(order_id=-5), {"order_id"}),
    (hold_body(colour="red", user_id=3), {"colour", "user_id"}),
    (["TEE-1", 2], {"body"}),
    ("TEE-1", {"body"}),
    (7, {"body"}),
])
def test_reserve_refuses_each_bad_field_with_422(api, tee, body, fields):
    refused = assert_error(api.post("/reservations", body), 422, "invalid")
    assert set(refused["fields"]) == fields
    assert all(isinstance(m, str) and m for m in refused["fields"].values())
    assert holds_count() == 0


def test_whole_floats_and_huge_exponents_are_judged_as_numbers(api, tee):
    ok = api.post("/reservations", data='{"sku":"TEE-1","quantity":2.0,"session_key":"s"}',
                  content_type="application/json")
    assert ok.status_code == 201 and ok.get_json()["quantity"] == 2
    refused = api.post("/reservations", data='{"sku":"TEE-1","quantity":1e400,"session_key":"s"}',
                       content_type="application/json")
    assert assert_error(refused, 422, "invalid")["fields"] == {"quantity": "must be at most 10000"}


@pytest.mark.parametrize("data", ['{"sku": "TEE-1",', "{'sku': 1}", "NaN", '{"q": Infinity}',
                                  b"\xff\xfe\xfa", "[" * 50_000, '{"sku": "\\ud800"}',
                                  "9" * 5000])
def test_malformed_json_is_400(api, tee, data):
    response = api.post("/reservations", data=data, content_type="application/json")
    assert_error(response, 400, "malformed_json")


def test_json_null_body_is_422(api, tee):
    response = api.post("/reservations", data="null", content_type="application/json")
    assert assert_error(response, 422, "invalid")["fields"] == {"body": "must be a JSON object"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
def test_a_body_that_is_not_json_is_415(api, tee, content_type):
    response = api.post("/reservations", data="sku=TEE-1&quantity=1", content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")


def test_a_huge_body_is_413(api, tee):
    body = hold_body(session_key="s", padding="x" * 70_000)
    assert_error(api.post("/reservations", body), 413, "body_too_large")


# --- one hold ---------------------------------------------------------------------------

@pytest.fixture
def hold_id(api, tee):
    return api.post("/reservations", hold_body()).get_json()["id"]


def test_get_reservation(api, hold_id):
    body = api.get(f"/reservations/{hold_id}").get_json()
    assert (body["id"], body["sku"], body["status"], body["ended_at"]) == (
        hold_id, "TEE-1", "active", None)


@pytest.mark.parametrize("rid", ["999", "0", "-1", "abc", "1.5", str(2**63), "9" * 400,
                                 "%C2%B2", "1%00"])
def test_unknown_or_impossible_reservation_ids_are_404(api, hold_id, rid):
    assert_error(api.get(f"/reservations/{rid}"), 404, "not_found")
    assert_error(api.post(f"/reservations/{rid}/release"), 404, "not_found")
    assert_error(api.post(f"/reservations/{rid}/extend", {"ttl_seconds": 600}), 404, "not_found")


def test_release_then_release_again_is_409_with_status(api, shop, tee, hold_id):
    response = api.post(f"/reservations/{hold_id}/release", {"reason": "cart emptied"})
    assert response.status_code == 200
    assert (response.get_json()["id"], response.get_json()["status"]) == (hold_id, "released")
    assert counters(tee.id) == (10, 0)
    hold = db.session.get(Reservation, hold_id)
    assert (hold.end_reason, hold.ended_by_api_client_id) == ("cart emptied", shop[0].id)
    again = assert_error(api.post(f"/reservations/{hold_id}/release"), 409,
                         "reservation_not_active")
    assert again["status"] == "released" and again["ended_by"] == "storefront"
    assert counters(tee.id) == (10, 0)


def test_release_without_a_reason_still_records_one(api, hold_id):
    assert api.post(f"/reservations/{hold_id}/release").status_code == 200
    assert db.session.get(Reservation, hold_id).end_reason


def test_commit_takes_units_out_of_stock_once(api, tee, hold_id):
    response = api.post(f"/reservations/{hold_id}/commit")
    assert (response.status_code, response.get_json()["status"]) == (200, "committed")
    assert counters(tee.id) == (8, 0)
    refused = assert_error(api.post(f"/reservations/{hold_id}/commit"), 409,
                           "reservation_not_active")
    assert refused["status"] == "committed"
    assert_error(api.post(f"/reservations/{hold_id}/release"), 409, "reservation_not_active")
    assert counters(tee.id) == (8, 0)
    assert services.check() == []


def test_extend_moves_the_expiry(api, hold_id):
    before = datetime.now(timezone.utc)
    response = api.post(f"/reservations/{hold_id}/extend", {"ttl_seconds": 3600})
    assert response.status_code == 200
    expires = datetime.fromisoformat(response.get_json()["expires_at"])
    assert before + timedelta(seconds=3600) <= expires <= before + timedelta(seconds=3660)


def test_extend_refusals(api, hold_id):
    beyond = assert_error(api.post(f"/reservations/{hold_id}/extend", {"ttl_seconds": 86_400}),
                          422, "extend_beyond_cap")
    assert "cap" in beyond
    earlier = assert_error(api.post(f"/reservations/{hold_id}/extend", {"ttl_seconds": 60}), 422,
                           "invalid")
    assert set(earlier["fields"]) == {"ttl_seconds"}
    missing = assert_error(api.post(f"/reservations/{hold_id}/extend", {}), 422, "invalid")
    assert set(missing["fields"]) == {"ttl_seconds"}
    api.post(f"/reservations/{hold_id}/release")
    assert_error(api.post(f"/reservations/{hold_id}/extend", {"ttl_seconds": 3600}), 409,
                 "reservation_not_active")


# --- carts and orders -------------------------------------------------------------------

def test_reserve_cart_holds_every_item(api, shop, product_factory, now):
    a, b = product_factory("A-1", on_hand=5), product_factory("B-1", on_hand=5)
    cart_id = make_cart(now, {a.id: 2, b.id: 3}, storefront=shop[0].id)
    response = api.post(f"/carts/{cart_id}/reserve", {"ttl_seconds": 600})
    assert response.status_code == 201
    holds = response.get_json()
    assert sorted((h["sku"], h["quantity"], h["cart_id"]) for h in holds) == [
        ("A-1", 2, cart_id), ("B-1", 3, cart_id)]
    assert counters(a.id) == (5, 2) and counters(b.id) == (5, 3)


def test_reserve_cart_short_names_each_sku_and_holds_nothing(api, shop, product_factory, now):
    a, b, c = (product_factory(s, on_hand=2) for s in ("A-1", "B-1", "C-1"))
    cart_id = make_cart(now, {a.id: 1, b.id: 3, c.id: 5}, storefront=shop[0].id)
    body = assert_error(api.post(f"/carts/{cart_id}/reserve"), 409, "insufficient_stock")
    assert sorted(s["sku"] for s in body["short"]) == ["B-1", "C-1"]
    assert "B-1" in body["message"] and "C-1" in body["message"]
    assert holds_count() == 0


def test_reserve_cart_unknown_or_empty(api, shop, now):
    assert_error(api.post("/carts/999/reserve"), 404, "not_found")
    assert_error(api.post(f"/carts/{2**31}/reserve"), 404, "not_found")
    assert_error(api.post(f"/carts/{make_cart(now, {}, storefront=shop[0].id)}/reserve"), 422, "invalid")


def test_confirm_order_commits_its_holds_then_refuses_twice(api, shop, tee, now):
    order_id = make_order(now, {tee.id: 2}, storefront=shop[0].id)
    api.post("/reservations", {"sku": "TEE-1", "quantity": 2, "order_id": order_id})
    response = api.post(f"/orders/{order_id}/confirm")
    assert response.status_code == 200
    assert response.get_json()["status"] == "confirmed"
    assert counters(tee.id) == (8, 0)
    body = assert_error(api.post(f"/orders/{order_id}/confirm"), 409, "order_wrong_state")
    assert body["status"] == "confirmed"


def test_confirm_an_order_that_is_not_held_is_409(api, shop, tee, now):
    order_id = make_order(now, {tee.id: 2}, storefront=shop[0].id)
    body = assert_error(api.post(f"/orders/{order_id}/confirm"), 409, "order_not_held")
    assert body["skus"] == ["TEE-1"]


def test_cancel_order_releases_its_holds(api, shop, tee, now):
    order_id = make_order(now, {tee.id: 2}, storefront=shop[0].id)
    api.post("/reservations", {"sku": "TEE-1", "quantity": 2, "order_id": order_id})
    response = api.post(f"/orders/{order_id}/cancel", {"reason": "customer changed mind"})
    assert (response.status_code, response.get_json()["status"]) == (200, "cancelled")
    assert counters(tee.id) == (10, 0)
    assert_error(api.post(f"/orders/{order_id}/cancel"), 409, "order_wrong_state")
    assert_error(api.post("/orders/424242/cancel"), 404, "not_found")
    assert db.session.get(Order, order_id).status == "cancelled"


def test_undocumented_method_is_json_405_with_allow(api, hold_id):
    response = api.client.delete(f"/api/v1/reservations/{hold_id}", headers=api.headers())
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


# --- idempotency ------------------------------------------------------------------------

def test_retry_with_the_same_key_gets_the_first_answer_and_holds_once(api, tee):
    first = api.post("/reservations", hold_body(), key="order-77-tee")
    again = api.post("/reservations", hold_body(), key="order-77-tee")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert holds_count() == 1 and counters(tee.id) == (10, 2)


def test_keys_belong_to_one_client(app, api, tee, now):
    _, other_token = services.create_api_client("app", now=now)
    other = Api(app.test_client(), other_token)
    assert api.post("/reservations", hold_body(), key="k-1").status_code == 201
    assert other.post("/reservations", hold_body(), key="k-1").status_code == 201
    assert holds_count() == 2


def test_refusals_are_replayed_too(api, tee, now):
    refused = api.post("/reservations", hold_body(quantity=11), key="big")
    assert refused.status_code == 409
    services.adjust(tee, 5, reason="delivery", actor=SYSTEM, now=now)
    again = api.post("/reservations", hold_body(quantity=11), key="big")
    assert (again.status_code, again.get_json()) == (409, refused.get_json())
    assert holds_count() == 0


def test_same_key_with_another_body_or_path_is_422(api, tee, hold_id):
    assert api.post("/reservations", hold_body(), key="k-2").status_code == 201
    assert_error(api.post("/reservations", hold_body(quantity=3), key="k-2"), 422,
                 "idempotency_key_reused")
    assert_error(api.post(f"/reservations/{hold_id}/release", key="k-2"), 422,
                 "idempotency_key_reused")
    assert holds_count() == 2


def test_requests_refused_before_any_work_leave_the_key_free(api, tee):
    assert api.post("/reservations", hold_body(quantity=0), key="k-3").status_code == 422
    assert api.post("/reservations", data="{", content_type="application/json",
                    key="k-3").status_code == 400
    assert api.post("/reservations", hold_body(), key="k-3").status_code == 201


@pytest.mark.parametrize("key", ["", " ", "a b", "k" * 256, "caf\u00e9"])
def test_malformed_idempotency_key_is_400(api, tee, key):
    assert_error(api.post("/reservations", hold_body(), key=key), 400, "invalid_idempotency_key")
    assert holds_count() == 0


def _hash_of(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return request_hash("POST", "/api/v1/reservations", canonical.encode())


def test_an_unexpected_error_frees_the_key_for_the_retry(api, tee, monkeypatch):
    real_reserve = services.reserve

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "reserve", broken)
    with pytest.raises(RuntimeError):
        api.post("/reservations", hold_body(), key="k-4")
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    db.session.commit()
    monkeypatch.setattr(services, "reserve", real_reserve)
    assert api.post("/reservations", hold_body(), key="k-4").status_code == 201


def test_prune_deletes_keys_older_than_a_day(api, tee):
    api.post("/reservations", hold_body(), key="old")
    api.post("/reservations", hold_body(), key="new")
    db.session.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
                       .values(created_at=datetime.now(timezone.utc) - timedelta(hours=25)))
    db.session.commit()
    assert prune_idempotency_keys(datetime.now(timezone.utc)) == 1
    assert db.session.scalars(select(IdempotencyKey.key)).all() == ["new"]


# --- the OpenAPI document ---------------------------------------------------------------

def test_openapi_documents_exactly_the_api_routes(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {(method.upper(), path) for path, item in doc["paths"].items()
                  for method in item}
    served = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1")))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == served


def test_openapi_states_the_enforced_bounds_and_every_refusal(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    new = schemas["NewReservation"]
    assert new["properties"]["ttl_seconds"]["minimum"] == app.config["HOLD_TTL_MIN"]
    assert new["properties"]["ttl_seconds"]["maximum"] == min(app.config["HOLD_TTL_MAX"],
                                                             app.config["HOLD_EXTEND_CAP"])
    assert new["properties"]["quantity"]["maximum"] == services.limits.MAX_HOLD_QUANTITY
    assert new["required"] == ["sku", "quantity"]
    for name in ("NewReservation", "Release", "Commit", "Extend", "CartReserve", "Confirm",
                 "Cancel"):
        assert schemas[name]["additionalProperties"] is False
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "post":
                # A batch names no record in its path, so it has no 404 of its own.
                refusals = {"400", "401", "409", "413", "415", "422"}
                refusals |= set() if path == "/products/batch" else {"404"}
                assert refusals <= set(operation["responses"]), path
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# --- seen in the dashboard --------------------------------------------------------------

def test_what_the_api_does_shows_in_the_dashboard_with_the_client_name(app, api, tee,
                                                                        staff_factory):
    api.post("/reservations", hold_body(quantity=1))
    released = api.post("/reservations", hold_body(quantity=1)).get_json()["id"]
    api.post(f"/reservations/{released}/release", {"reason": "checkout abandoned"})
    staff = new_client(app)
    login(staff, staff_factory("viewer"))
    holds = staff.get("/holds").get_data(as_text=True)
    activity = staff.get("/activity").get_data(as_text=True)
    assert "web shop" in holds
    assert activity.count("API client web shop") >= 3  # two reserves and a release
    assert "checkout abandoned" in activity
