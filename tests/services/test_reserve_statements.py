"""The statements `reserve` sends: the tuned fast path stays three, the slow path says why."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from dashboard import services
from dashboard.extensions import db
from dashboard.services.errors import InsufficientStock
from tests.helpers.records import counters
from tests.services.helpers import SESSION


@contextmanager
def statements():
    """The first word of every statement sent in the block (BEGIN and COMMIT left out)."""
    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        word = statement.lstrip().split(None, 1)[0].upper()
        if word not in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            sent.append(word)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_reserving_by_sku_with_units_free_is_three_statements(product_factory, now):
    product = product_factory(on_hand=100, threshold=2)
    sku, product_id = product.sku, product.id  # read now: the commits below expire `product`
    services.reserve(sku, 1, SESSION, now=now)  # the connection is warm
    with statements() as sent:
        services.reserve(sku, 1, SESSION, now=now)
    assert sent == ["UPDATE", "INSERT", "INSERT"]  # take, the hold, its ledger line
    assert counters(product_id) == (100, 2)


def test_reserving_by_id_first_finds_the_product(product_factory, now):
    product_id = product_factory(on_hand=100, threshold=2).id
    with statements() as sent:
        services.reserve(product_id, 1, SESSION, now=now)
    assert sent == ["SELECT", "UPDATE", "INSERT", "INSERT"]


def test_a_refusal_gives_back_overdue_holds_and_keeps_them_given_back(product_factory, now):
    product = product_factory(on_hand=3, threshold=0)
    services.reserve(product.sku, 3, SESSION, ttl_seconds=60, now=now - timedelta(minutes=2))
    with pytest.raises(InsufficientStock, match="only 3 available"):
        services.reserve(product.sku, 4, SESSION, now=now)
    db.session.rollback()
    assert counters(product.id) == (3, 0)  # the lazy expiry was committed with the refusal
