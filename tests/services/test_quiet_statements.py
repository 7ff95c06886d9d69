"""A storefront call that leaves its product above the low-stock threshold is its one
statement run alone in autocommit on PostgreSQL (issue 12): no BEGIN before it, no COMMIT
after it, the row locks held for that statement only. A call that can touch an alert or an
event runs in a transaction with its check after it, and a product that moved between the
statement's snapshot and its lock is still evaluated.

What each statement was sent as is read off the psycopg connection (tests/helpers/statements).
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from dashboard import services
from dashboard.extensions import db
from dashboard.models import NotificationEvent
from dashboard.services import SYSTEM
from dashboard.services.errors import InvalidInput
from dashboard.services.locations import UnknownLocation, create_location
from dashboard.services.transaction import unit_of_work
from tests.helpers.records import counters
from tests.helpers.statements import ALONE, Sent, sent_statements
from tests.services.helpers import SESSION, unresolved_alert

pytestmark = pytest.mark.usefixtures("requires_postgres")


def new_product(product_factory, **figures) -> tuple[int, str]:
    """A product's id and SKU, with the session left outside a transaction, as a request
    starts (reading an expired object begins one)."""
    product = product_factory(**figures)
    found = product.id, product.sku
    db.session.commit()
    return found


def test_a_quiet_reserve_is_one_statement_and_its_own_transaction(product_factory, now):
    product_id, sku = new_product(product_factory, on_hand=100, threshold=2)
    with sent_statements(db.engine) as by_sku:
        services.reserve(sku, 1, SESSION, now=now)
    with sent_statements(db.engine) as by_id:
        services.reserve(product_id, 1, SESSION, now=now)
    assert (by_sku, by_id) == ([ALONE], [ALONE])
    assert counters(product_id) == (100, 2)


def test_a_quiet_reserve_at_a_named_location_is_still_one_statement(product_factory, now):
    # The code is matched in the statement: no read of the location (and its BEGIN) first.
    # A code that is no sellable location takes nothing there, and the slow path says why.
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    create_location("BACK", "Back office", sellable=False, actor=SYSTEM, now=now)
    product_id, sku = new_product(product_factory, on_hand=100, threshold=2)
    services.adjust(product_id, 50, reason="delivery", location="STORE-1", actor=SYSTEM,
                    now=now)
    db.session.commit()
    with sent_statements(db.engine) as sent:
        hold = services.reserve(sku, 3, SESSION, location=" store-1 ", now=now)
    assert sent == [ALONE] and (hold.location_id, hold.location.code) == (store.id, "STORE-1")
    db.session.commit()
    for code, refusal in (("NOWHERE", UnknownLocation), ("BACK", InvalidInput),
                          ("not a code!", UnknownLocation)):
        with pytest.raises(refusal):
            services.reserve(sku, 1, SESSION, location=code, now=now)
        db.session.rollback()
    assert counters(product_id) == (150, 3)


def test_quiet_release_commit_and_extend_are_one_statement_each_on_their_own(
    product_factory, now
):
    product_id, _ = new_product(product_factory, on_hand=100, threshold=2)
    released, committed, extended = (services.reserve(product_id, 1, SESSION, now=now).id
                                     for _ in range(3))
    db.session.commit()  # reading each hold's id re-read it after its commit
    with sent_statements(db.engine) as release_sent:
        services.release(released, actor=SYSTEM, reason="changed mind", now=now)
    with sent_statements(db.engine) as commit_sent:
        services.commit(committed, actor=SYSTEM, now=now)
    with sent_statements(db.engine) as extend_sent:
        services.extend(extended, now + timedelta(minutes=30), actor=SYSTEM, now=now)
    assert release_sent == commit_sent == [ALONE]
    assert extend_sent == [Sent("UPDATE", alone=True, idle_after=True)]
    assert counters(product_id) == (99, 1)


def test_a_reserve_that_reaches_the_threshold_runs_in_a_transaction_with_its_alert(
    product_factory, now
):
    product_id, _ = new_product(product_factory, on_hand=3, threshold=2)
    with sent_statements(db.engine) as sent:
        services.reserve(product_id, 1, SESSION, now=now)  # 2 left: at the threshold
    # The quiet form changed nothing (it would end at the threshold); the plain form took
    # the unit in a transaction that also opened the alert.
    assert sent[0] == Sent("WITH", alone=True, idle_after=True)
    assert [s.alone for s in sent[1:]] == [False] * (len(sent) - 1)
    assert sent[1].word == "WITH" and "INSERT" in [s.word for s in sent[2:]]
    assert counters(product_id) == (3, 1)
    assert unresolved_alert(product_id).kind == "LOW_STOCK"


def test_a_muted_product_is_never_quiet(product_factory, now):
    product_id, _ = new_product(product_factory, on_hand=100, threshold=2)
    db.session.execute(text("UPDATE products SET alert_muted = true WHERE id = :id"),
                       {"id": product_id})
    db.session.commit()
    with sent_statements(db.engine) as sent:
        services.reserve(product_id, 1, SESSION, now=now)
    assert [s.alone for s in sent] == [True] + [False] * (len(sent) - 1)
    assert counters(product_id) == (100, 1)


def test_with_an_event_on_every_change_nothing_runs_alone(app, product_factory, now,
                                                          monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFY_STOCK_UPDATED", True)
    product_id, _ = new_product(product_factory, on_hand=100, threshold=2)
    with sent_statements(db.engine) as sent:
        hold = services.reserve(product_id, 1, SESSION, now=now)
    assert sent and not any(s.alone for s in sent)
    with sent_statements(db.engine) as sent:
        services.release(hold.id, actor=SYSTEM, reason="changed mind", now=now)
    assert sent and not any(s.alone for s in sent)
    kinds = db.session.scalars(select(NotificationEvent.kind)
                          .where(NotificationEvent.kind == "stock_updated")).all()
    assert len(kinds) == 2  # 100 -> 99 -> 100, each with its event


def test_inside_a_unit_of_work_the_statement_waits_for_the_outer_commit(product_factory,
                                                                       now):
    product_id, _ = new_product(product_factory, on_hand=100, threshold=2)
    with sent_statements(db.engine) as sent, unit_of_work() as work:
        services.reserve(product_id, 1, SESSION, now=now)
        work.discard()  # e.g. the answer could not be stored: the hold must go with it
    assert sent and not any(s.alone for s in sent)
    assert counters(product_id) == (100, 0)


def test_a_release_whose_product_moves_under_it_is_still_evaluated(app, product_factory,
                                                                   now):
    """The release's quiet check reads the product from its snapshot (available 9 of
    threshold 2); another transaction, holding the row, takes it down to 0 meanwhile. The
    release waits for the row, returns 0 -> 1, and the product gets its low alert."""
    product_id, _ = new_product(product_factory, on_hand=10, threshold=2)
    hold_id = services.reserve(product_id, 1, SESSION, now=now).id
    db.session.commit()
    other = db.engine.connect()
    other.execute(text("SELECT 1 FROM products WHERE id = :id FOR UPDATE"), {"id": product_id})
    other.execute(text("UPDATE products SET on_hand = reserved WHERE id = :id"),
                  {"id": product_id})
    outcome: dict = {}

    def release() -> None:
        with app.app_context():
            with sent_statements(db.engine) as sent:
                try:
                    services.release(hold_id, actor=SYSTEM, reason="changed mind", now=now)
                except BaseException as error:  # reported below, not lost in the thread
                    outcome["error"] = error
            outcome["sent"] = sent
            db.session.remove()

    releasing = threading.Thread(target=release)
    try:
        releasing.start()
        _wait_for_a_lock_wait(releasing)
    finally:
        other.commit()
        other.close()
    releasing.join(timeout=60)
    assert not releasing.is_alive() and "error" not in outcome
    assert outcome["sent"][0] == ALONE  # the quiet statement did the release
    assert counters(product_id) == (1, 0)
    assert unresolved_alert(product_id).kind == "LOW_STOCK"


def _wait_for_a_lock_wait(thread: threading.Thread, seconds: float = 30) -> None:
    """Until some backend of this database waits on a row lock (the release, blocked)."""
    watcher = db.engine.connect()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and thread.is_alive():
            waiting = watcher.execute(text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'")).scalar()
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)
        raise AssertionError("the release never waited for the product's row lock")
    finally:
        watcher.close()
