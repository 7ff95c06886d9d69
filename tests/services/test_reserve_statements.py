"""The statements the storefront's calls send: ONE on PostgreSQL for reserve, release,
commit and extend of a free product / an active hold (issue 12), the tuned few on SQLite;
the slow path says why."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from dashboard import services
from dashboard.extensions import db
from dashboard.services.errors import InsufficientStock
from tests.helpers.records import counters
from tests.helpers.statements import first_word, watch_alone
from tests.services.helpers import SESSION


@contextmanager
def statements():
    """The first word of every statement sent in the block (BEGIN and COMMIT left out), the
    ones run alone (past the engine's events) included."""
    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        word = first_word(statement)
        if word not in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            sent.append(word)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with watch_alone(lambda _driver, statement, _row: sent.append(first_word(statement))):
            yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


SQLITE_RESERVE = ["SELECT", "SELECT", "SELECT", "UPDATE", "UPDATE", "INSERT", "INSERT"]


def test_reserving_by_sku_with_units_free_is_one_statement(is_postgres, product_factory, now):
    product = product_factory(on_hand=100, threshold=2)
    sku, product_id = product.sku, product.id  # read now: the commits below expire `product`
    services.reserve(sku, 1, SESSION, now=now)  # the connection is warm
    with statements() as sent:
        services.reserve(sku, 1, SESSION, now=now)
    # PostgreSQL: take, hold and ledger line in one CTE; SQLite, statement by statement:
    # the product, its lock, its levels in allocation order; the level and the totals taken;
    # the hold and its ledger line.
    assert sent == (["WITH"] if is_postgres else SQLITE_RESERVE)
    assert counters(product_id) == (100, 2)


def test_reserving_by_id_is_one_statement_on_postgres(is_postgres, product_factory, now):
    product_id = product_factory(on_hand=100, threshold=2).id
    with statements() as sent:
        services.reserve(product_id, 1, SESSION, now=now)
    assert sent == (["WITH"] if is_postgres else SQLITE_RESERVE)


def test_release_commit_and_extend_of_an_active_hold_are_one_statement_on_postgres(
    is_postgres, product_factory, now
):
    product = product_factory(on_hand=100, threshold=2)
    sku, product_id = product.sku, product.id
    released, committed, extended = (services.reserve(sku, 1, SESSION, now=now).id
                                     for _ in range(3))
    with statements() as release_sent:
        services.release(released, actor=services.SYSTEM, reason="changed mind", now=now)
    with statements() as commit_sent:
        services.commit(committed, actor=services.SYSTEM, now=now)
    with statements() as extend_sent:
        services.extend(extended, now + timedelta(minutes=30), actor=services.SYSTEM, now=now)
    if is_postgres:
        assert (release_sent, commit_sent, extend_sent) == (["WITH"], ["WITH"], ["UPDATE"])
    else:  # lock the hold, then the general path (mark it, move the counters, the ledger)
        assert release_sent[0] == commit_sent[0] == extend_sent[0] == "SELECT"
    assert counters(product_id) == (99, 1)

def test_a_low_product_is_evaluated_after_the_one_statement(is_postgres, product_factory, now):
    sku = product_factory(on_hand=3, threshold=2).sku
    with statements() as sent:
        services.reserve(sku, 1, SESSION, now=now)  # 2 left: at the threshold, an alert opens
    assert sent[0] == ("WITH" if is_postgres else "SELECT")
    assert "SELECT" in sent and "INSERT" in sent[-1:]  # the alert read, then its INSERT


def test_a_refusal_gives_back_overdue_holds_and_keeps_them_given_back(product_factory, now):
    product = product_factory(on_hand=3, threshold=0)
    services.reserve(product.sku, 3, SESSION, ttl_seconds=60, now=now - timedelta(minutes=2))
    with pytest.raises(InsufficientStock, match="only 3 available"):
        services.reserve(product.sku, 4, SESSION, now=now)
    db.session.rollback()
    assert counters(product.id) == (3, 0)  # the lazy expiry was committed with the refusal
