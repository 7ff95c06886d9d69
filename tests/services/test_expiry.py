"""expire_due: overdue holds give their stock back, set-based, in committed batches."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Reservation
from dashboard.services import SYSTEM
from tests.helpers.records import counters
from tests.services.helpers import SESSION, ledger, unresolved_alert


def _statuses() -> dict[int, str]:
    rows = db.session.execute(db.select(Reservation.id, Reservation.status)).all()
    db.session.commit()
    return dict(rows)


def test_expire_due_ends_only_overdue_holds(product_factory, now):
    a, b = product_factory(on_hand=10), product_factory(on_hand=10)
    due = [services.reserve(a.sku, 2, SESSION, 60, now=now),
           services.reserve(b.sku, 3, SESSION, 120, now=now)]
    keep = services.reserve(a.sku, 1, SESSION, 3600, now=now)

    result = services.expire_due(now + timedelta(seconds=120))

    assert (result.holds, result.units, result.products) == (2, 5, 2)
    statuses = _statuses()
    assert [statuses[h.id] for h in due] == ["expired", "expired"]
    assert statuses[keep.id] == "active"
    assert counters(a.id) == (10, 1) and counters(b.id) == (10, 0)
    rows = ledger(kind="expire")
    assert sorted(r.reservation_id for r in rows) == sorted(h.id for h in due)
    assert all(r.actor_staff_id is None and r.actor_api_client_id is None for r in rows)
    assert services.check() == []


def test_expire_due_ledger_after_figures_walk_in_order(product_factory, now):
    product = product_factory(on_hand=10)
    for _ in range(3):
        services.reserve(product.sku, 2, SESSION, 60, now=now)
    services.expire_due(now + timedelta(minutes=2))
    assert [r.reserved_after for r in ledger(product.id, "expire")] == [4, 2, 0]


def test_expire_due_works_in_batches(product_factory, now):
    product = product_factory(on_hand=50)
    for _ in range(7):
        services.reserve(product.sku, 1, SESSION, 60, now=now)
    result = services.expire_due(now + timedelta(minutes=2), batch=3)
    assert result.holds == 7
    assert counters(product.id) == (50, 0)

    for _ in range(5):
        services.reserve(product.sku, 1, SESSION, 60, now=now)
    first = services.expire_due(now + timedelta(minutes=2), batch=2, max_batches=1)
    assert first.holds == 2 and counters(product.id) == (50, 3)
    assert services.check() == []


def test_expire_due_with_nothing_due_changes_nothing(product_factory, now):
    product = product_factory(on_hand=5)
    services.reserve(product.sku, 1, SESSION, 60, now=now)
    assert services.expire_due(now).holds == 0  # due exactly at expires_at, not before
    assert services.expire_due(now + timedelta(seconds=59)).as_dict()["holds_expired"] == 0
    assert services.expire_due(now + timedelta(seconds=60)).holds == 1


def test_expiring_an_ended_hold_changes_nothing(product_factory, now):
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 2, SESSION, 60, now=now)
    services.release(hold.id, actor=SYSTEM, reason="done", now=now)
    assert services.expire_due(now + timedelta(hours=1)).holds == 0
    assert _statuses()[hold.id] == "released"
    assert ledger(product.id, "expire") == []


def test_release_after_expiry_is_refused_with_the_system_as_ender(product_factory, now):
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 2, SESSION, 60, now=now)
    services.expire_due(now + timedelta(minutes=5))
    with pytest.raises(services.errors.ReservationNotActive,
                       match="already expired by the system"):
        services.release(hold.id, actor=SYSTEM, reason="late", now=now + timedelta(minutes=6))
    assert counters(product.id) == (5, 0)


def test_expiry_evaluates_alerts(product_factory, now):
    product = product_factory(on_hand=5, threshold=2)
    services.reserve(product.sku, 5, SESSION, 60, now=now)
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"
    result = services.expire_due(now + timedelta(minutes=2))
    assert result.alerts.resolved == 1
    assert unresolved_alert(product.id) is None
    assert services.check() == []


def test_lazy_expiry_skips_a_hold_another_transaction_is_ending(
        requires_postgres, database_url, product_factory, now):
    # Waiting for that hold while the other transaction waits for this product (or for a
    # hold this one took) deadlocked reserves against releases and the scheduler's sweep.
    product = product_factory(on_hand=2)
    busy, free = (services.reserve(product.sku, 1, SESSION, 60, now=now) for _ in range(2))
    busy_id, free_id, product_id = busy.id, free.id, product.id
    db.session.commit()
    other = sa.create_engine(database_url)
    try:
        with other.connect() as conn:
            conn.execute(sa.text("SELECT id FROM reservations WHERE id = :id FOR UPDATE"),
                         {"id": busy_id})
            # Refuse instead of hanging if reserve waits for the locked hold after all.
            db.session.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
            hold = services.reserve(product_id, 1, SESSION, 60, now=now + timedelta(minutes=5))
            conn.rollback()
    finally:
        other.dispose()
    assert _statuses() == {busy_id: "active", free_id: "expired", hold.id: "active"}
    assert counters(product_id) == (2, 2)
