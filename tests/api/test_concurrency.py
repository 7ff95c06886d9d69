"""The API under real concurrency on PostgreSQL: threads and a live gunicorn on loopback."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import IdempotencyKey, Reservation
from tests.api.helpers import Api
from tests.helpers.records import counters, make_cart


def race(count: int, work) -> list:
    """Run work(i) in `count` threads released together; results in thread order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # surfaced by the assertions, not lost in the thread
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def hold_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(Reservation))
    db.session.commit()
    return count


def test_concurrent_duplicates_with_one_key_have_one_effect(requires_postgres, app,
                                                            product_factory, now):
    product = product_factory("TEE-1", on_hand=100)
    _, token = services.create_api_client("shop", now=now)
    body = {"sku": "TEE-1", "quantity": 3, "session_key": "s-1"}

    def post(_):
        with app.app_context():  # each thread: its own context, session and connection
            response = Api(app.test_client(), token).post("/reservations", body,
                                                          key="same-click")
            return response.status_code, response.get_json()

    results = race(12, post)
    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, results
    assert len({str(json) for status, json in results if status == 201}) == 1
    assert all(json["error"] == "idempotency_in_progress"
               for status, json in results if status == 409)
    assert hold_count() == 1 and counters(product.id) == (100, 3)
    assert db.session.scalar(select(IdempotencyKey.status_code)) == 201
    assert services.check() == []


@pytest.mark.slow
def test_64_http_clients_on_10_units_get_ten_holds(requires_postgres, live_server,
                                                   product_factory, now):
    product = product_factory("HOT-1", on_hand=10)
    _, token = services.create_api_client("shop", now=now)
    headers = {"Authorization": f"Bearer {token}"}

    def reserve(i):
        response = requests.post(
            f"{live_server}/api/v1/reservations", headers=headers, timeout=60,
            json={"sku": "HOT-1", "quantity": 1, "session_key": f"shopper-{i}"},
        )
        return response.status_code, response.json()

    results = race(64, reserve)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 10, 409: 54}, results
    assert all(json["error"] == "insufficient_stock" and json["available"] == 0
               for status, json in results if status == 409)
    assert counters(product.id) == (10, 10)
    assert hold_count() == 10
    assert services.check() == []


@pytest.mark.slow
def test_carts_reserved_concurrently_are_all_or_nothing(requires_postgres, live_server,
                                                        product_factory, now):
    scarce = product_factory("SCARCE-1", on_hand=3)
    plenty = product_factory("PLENTY-1", on_hand=100)
    client, token = services.create_api_client("shop", now=now)
    carts = [make_cart(now, {scarce.id: 1, plenty.id: 2}, storefront=client.id) for _ in range(8)]

    def reserve(i):
        response = requests.post(f"{live_server}/api/v1/carts/{carts[i]}/reserve", timeout=60,
                                 headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.json()

    results = race(len(carts), reserve)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 3, 409: 5}, results
    assert all([s["sku"] for s in json["short"]] == ["SCARCE-1"]
               for status, json in results if status == 409)
    # The five refused carts held nothing of the product they could have had.
    assert counters(scarce.id) == (3, 3) and counters(plenty.id) == (100, 6)
    assert hold_count() == 6
    assert services.check() == []
