"""Issue 9 on the API: the answer commits with the effect; a key is never stuck; outages
answer 503; nothing is read after the commit."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select

from dashboard import create_app, services
from dashboard.api import idempotency
from dashboard.extensions import db
from dashboard.models import IdempotencyKey, Reservation
from dashboard.services import SYSTEM, Actor, Owner
from dashboard.services.transaction import in_unit_of_work
from tests.api.helpers import Api
from tests.helpers.app import app_config
from tests.helpers.records import make_cart, make_order
from tests.helpers.statements import statements


@pytest.fixture
def tee(product_factory):
    return product_factory("TEE-1", on_hand=10)


def body(**overrides):
    return {"sku": "TEE-1", "quantity": 2, "session_key": "sess-1", **overrides}


def keys_and_holds() -> tuple[int, int]:
    found = (db.session.scalar(select(func.count()).select_from(IdempotencyKey)),
             db.session.scalar(select(func.count()).select_from(Reservation)))
    db.session.commit()
    return found


@pytest.fixture
def low_tee(product_factory):
    """A product a reserve of 2 takes to its threshold: the call is more than one statement
    (the alert check follows the take), so a key is claimed first and answered after."""
    return product_factory("TEE-1", on_hand=10, threshold=9)


def test_the_answer_is_stored_in_the_transaction_of_the_effect(api, low_tee):
    with statements(db.engine) as seen:
        response = api.post("/reservations", body(), key="k-1")
    assert response.status_code == 201
    # ONE transaction from the claim to the stored answer: the hold and the key commit together
    claim = next(i for i, s in enumerate(seen.statements) if "INSERT INTO idempotency_keys" in s)
    assert [c for c in seen.commits if c > claim] == [len(seen.statements)]
    assert "UPDATE idempotency_keys" in seen.statements[-1]
    row = db.session.scalars(select(IdempotencyKey)).one()
    assert row.status_code == 201 and json.loads(row.response_body) == response.get_json()


def test_a_quiet_reserve_stores_its_key_and_answer_in_its_one_statement(
        requires_postgres, api, tee):
    assert api.get("/products/TEE-1").status_code == 200  # notes the client's use (once a minute)
    db.session.commit()
    with statements(db.engine) as seen:
        first = api.post("/reservations", body(), key="k-1")
    assert first.status_code == 201
    [statement] = seen.statements  # the token read changed nothing: not counted
    assert "INSERT INTO reservations" in statement and "INSERT INTO idempotency_keys" in statement
    assert seen.commits == [1]
    row = db.session.scalars(select(IdempotencyKey)).one()
    db.session.commit()
    # The answer the statement stored is the answer sent, its id and location included.
    assert row.status_code == 201 and json.loads(row.response_body) == first.get_json()
    assert first.get_json()["location"] == "MAIN"
    again = api.post("/reservations", body(), key="k-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    reused = api.post("/reservations", body(quantity=1), key="k-1")
    assert reused.status_code == 422 and reused.get_json()["error"] == "idempotency_key_reused"
    assert keys_and_holds() == (1, 1)


def test_a_keyed_reserve_waits_for_a_request_with_its_key_before_locking_the_product(
        requires_postgres, app, api, shop, tee, database_url):
    """The one-statement reserve takes the key's lock before the product's, as the general
    claim does: a request that holds the key and then needs the product (its own reserve)
    is never blocked by the retry waiting for it (which would be a deadlock)."""
    app.config["IDEMPOTENCY_WAIT_MS"] = 2000
    db.session.commit()
    other = sa.create_engine(database_url)
    answers: list = []
    try:
        with other.connect() as first:  # a first request: its key claimed, not yet answered
            first.execute(idempotency._CLAIM["postgresql"], dict(
                api_client_id=shop[0].id, key="k-7", request_hash="x", lock_timeout="1s",
                created_at=datetime.now(timezone.utc)))
            retry = threading.Thread(target=lambda: answers.append(
                _post_in_own_context(app, shop[1], "k-7")))
            retry.start()
            time.sleep(0.5)  # the retry is waiting by now
            first.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            first.execute(sa.text("UPDATE products SET updated_at = now() WHERE sku = 'TEE-1'"))
            first.rollback()  # the first request died: the retry goes ahead
        retry.join(timeout=30)
    finally:
        app.config["IDEMPOTENCY_WAIT_MS"] = 3000
        other.dispose()
    assert answers == [201]
    assert keys_and_holds() == (1, 1)


def _post_in_own_context(app, token: str, key: str) -> int:
    with app.app_context():
        return Api(app.test_client(), token).post("/reservations", body(), key=key).status_code


def test_a_request_that_fails_before_its_commit_leaves_the_key_free_at_once(api, low_tee,
                                                                          monkeypatch):
    def broken(*args):
        raise RuntimeError("the worker died while storing the answer")

    monkeypatch.setattr(idempotency, "store", broken)
    with pytest.raises(RuntimeError):
        api.post("/reservations", body(), key="k-2")
    assert keys_and_holds() == (0, 0)  # the hold rolled back with the claim
    monkeypatch.undo()
    assert api.post("/reservations", body(), key="k-2").status_code == 201
    assert keys_and_holds() == (1, 1)


def test_a_refusal_is_stored_with_the_key_and_its_partial_work_rolled_back(api, tee):
    first = api.post("/reservations", body(quantity=11), key="k-3")
    assert first.status_code == 409 and first.get_json()["error"] == "insufficient_stock"
    services.adjust(tee.id, 5, reason="delivery", actor=SYSTEM, now=tee.created_at)
    again = api.post("/reservations", body(quantity=11), key="k-3")
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert keys_and_holds() == (1, 0)


def test_a_running_request_with_the_same_key_makes_the_second_wait_then_409(
        requires_postgres, app, api, shop, tee, database_url, now):
    app.config["IDEMPOTENCY_WAIT_MS"] = 200
    db.session.commit()
    other = sa.create_engine(database_url)
    try:
        with other.connect() as conn:  # a first request, its claim not yet committed
            conn.execute(sa.text(
                "INSERT INTO idempotency_keys (api_client_id, key, request_hash, created_at)"
                " VALUES (:c, 'busy', 'x', now())"), {"c": shop[0].id})
            response = api.post("/reservations", body(), key="busy")
            assert response.status_code == 409, response.get_json()
            assert response.get_json()["error"] == "idempotency_in_progress"
            assert response.headers["Retry-After"] == "1"
            conn.rollback()  # the first request died before its commit
        assert api.post("/reservations", body(), key="busy").status_code == 201
    finally:
        app.config["IDEMPOTENCY_WAIT_MS"] = 3000
        other.dispose()
    assert keys_and_holds() == (1, 1)


def _terminate_own_backend(database_url: str):
    """A test hook: another connection terminates this request's backend mid-request."""
    killer = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")

    def kill():
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with killer.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    return killer, kill


def test_a_backend_terminated_mid_request_answers_503_and_frees_the_key(
        requires_postgres, api, low_tee, database_url, monkeypatch):
    killer, kill = _terminate_own_backend(database_url)
    real = services.reserve

    def reserve_then_die(*args, **kwargs):
        hold = real(*args, **kwargs)
        kill()
        return hold

    monkeypatch.setattr(services, "reserve", reserve_then_die)
    try:
        response = api.post("/reservations", body(), key="k-5")
    finally:
        killer.dispose()
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"] == "database_unavailable"
    assert response.get_json()["outcome"] == "not_applied"
    db.session.remove()
    monkeypatch.undo()
    assert keys_and_holds() == (0, 0)
    assert api.post("/reservations", body(), key="k-5").status_code == 201
    assert keys_and_holds() == (1, 1)


def test_a_connection_lost_during_commit_says_the_outcome_is_unknown(
        requires_postgres, api, low_tee, database_url):
    killer = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")

    def kill_before_the_commit(connection):  # the engine's commit event: COMMIT comes next
        if in_unit_of_work():
            # The server's own pid, asked in the transaction: through PgBouncer the
            # connection's backend_pid is the pooler's, not the server's.
            pid = connection.connection.dbapi_connection.execute(
                "SELECT pg_backend_pid()").fetchone()[0]
            with killer.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    event.listen(db.engine, "commit", kill_before_the_commit)
    try:
        response = api.post("/reservations", body(), key="k-6")
    finally:
        event.remove(db.engine, "commit", kill_before_the_commit)
        killer.dispose()
    assert response.status_code == 503
    answer = response.get_json()
    assert answer["error"] == "database_unavailable" and answer["outcome"] == "unknown"
    assert "may or may not" in answer["message"] and "same Idempotency-Key" in answer["message"]
    db.session.remove()
    retry = api.post("/reservations", body(), key="k-6")  # learns the real outcome
    assert retry.status_code == 201
    assert keys_and_holds() == (1, 1)


def test_an_unreachable_database_answers_503_json_with_retry_after(database_url):
    if database_url.startswith("sqlite"):
        url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    else:
        url = sa.engine.make_url(database_url).set(port=1).render_as_string(False)
    closed = create_app(app_config(url))
    response = closed.test_client().get("/api/v1/products/TEE-1",
                                        headers={"Authorization": "Bearer sr_whatever"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"] == "database_unavailable"
    response = closed.test_client().post("/api/v1/reservations", json=body(),
                                         headers={"Authorization": "Bearer sr_x"})
    assert response.status_code == 503 and response.is_json


@pytest.mark.parametrize("key", [None, "k-count"])
def test_no_api_call_runs_a_statement_after_its_commit(api, shop, product_factory, key):
    now = datetime.now(timezone.utc)  # the holds must still be running when extended
    product_factory("TEE-1", on_hand=50)
    product_factory("CAP-1", on_hand=50)
    storefront = Actor.api(shop[0])  # the shop's own holds, cart and order: in its scope
    hold = services.reserve("TEE-1", 1, Owner(session_key="a"), actor=storefront, now=now)
    other = services.reserve("TEE-1", 1, Owner(session_key="b"), actor=storefront, now=now)
    third = services.reserve("TEE-1", 1, Owner(session_key="c"), actor=storefront, now=now)
    cart = make_cart(now, {hold.product_id: 2}, storefront=shop[0].id)
    order = make_order(now, {hold.product_id: 1}, storefront=shop[0].id)
    services.reserve("TEE-1", 1, Owner(order_id=order), actor=storefront, now=now)
    db.session.commit()
    calls = [
        ("/reservations", body()), ("/reservations", body(quantity=999)),
        (f"/reservations/{hold.id}/release", {}), (f"/reservations/{hold.id}/release", {}),
        (f"/reservations/{other.id}/extend", {"ttl_seconds": 1800}),
        (f"/reservations/{third.id}/commit", {}), (f"/carts/{cart}/reserve", {}),
        (f"/orders/{order}/confirm", {}), (f"/orders/{order}/cancel", {}),
    ]
    statuses = []
    for n, (path, json) in enumerate(calls):
        with statements(db.engine) as seen:
            response = api.post(path, json, key=key and f"{key}-{n}")
        statuses.append(response.status_code)
        assert response.status_code < 500, (path, response.get_json())
        if response.status_code < 300:
            assert seen.commits, (path, response.get_json())
        assert seen.after_last_commit == [], (path, seen.after_last_commit)
    assert statuses == [201, 409, 200, 409, 200, 200, 201, 200, 200]
