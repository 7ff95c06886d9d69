"""check (I1-I6), reconcile and repair, and the append-only ledger."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import StockMovement
from dashboard.services import SYSTEM
from tests.helpers.records import counters
from tests.services.helpers import SESSION, ledger, staff_actor


def _raw(sql: str, **params) -> None:
    """Change the database behind the services' back, as a broken script would."""
    db.session.execute(sa.text(sql), params)
    db.session.commit()


def test_check_is_clean_after_ordinary_work(product_factory, now):
    product = product_factory(on_hand=10)
    a = services.reserve(product.sku, 3, SESSION, 60, now=now)
    b = services.reserve(product.sku, 2, SESSION, now=now)
    services.commit(b.id, actor=SYSTEM, now=now)
    services.expire_due(now + timedelta(minutes=5))
    assert a.id and services.check() == []
    assert services.reconcile() == []


def test_check_reports_reserved_not_matching_holds_and_ledger(product_factory, now):
    product = product_factory("DRIFT", on_hand=10)
    services.reserve(product.sku, 2, SESSION, now=now)
    _raw("UPDATE products SET reserved = 5 WHERE id = :id", id=product.id)
    problems = services.check()
    assert "I2 DRIFT: reserved 5 but active holds sum to 2" in problems
    assert any(p.startswith("I3 DRIFT:") for p in problems)


def test_check_reports_an_alert_that_does_not_match(product_factory, now):
    product = product_factory("ALERTED", on_hand=1, threshold=3)
    _raw("UPDATE products SET on_hand = 50 WHERE id = :id", id=product.id)
    problems = services.check()
    assert "I5 ALERTED: unresolved LOW_STOCK alert but the product is fine" in problems


def test_check_reports_a_hold_ended_without_a_reason_or_twice(product_factory, now):
    product = product_factory(on_hand=10)
    hold = services.reserve(product.sku, 1, SESSION, now=now)
    services.release(hold.id, actor=SYSTEM, reason="x", now=now)
    _raw("INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,"
         " on_hand_after, reserved_after, reservation_id, created_at)"
         " VALUES (:p, 1, 'expire', 0, 0, 10, 0, :r, :now)", p=product.id, r=hold.id, now=now)
    assert f"I6 hold {hold.id}: ended 2 times in the ledger" in services.check()


def test_the_database_itself_refuses_reserved_above_on_hand(product_factory):
    product = product_factory(on_hand=3)
    with pytest.raises(sa.exc.IntegrityError):
        _raw("UPDATE products SET reserved = 4 WHERE id = :id", id=product.id)
    db.session.rollback()


def test_the_database_itself_refuses_a_second_unresolved_alert(product_factory, now):
    product = product_factory(on_hand=1, threshold=3)
    with pytest.raises(sa.exc.IntegrityError):
        _raw("INSERT INTO stock_alerts (product_id, kind, status, opened_at, opened_available)"
             " VALUES (:p, 'OUT_OF_STOCK', 'open', :now, 0)", p=product.id, now=now)
    db.session.rollback()


def test_the_ledger_is_append_only(product_factory):
    product = product_factory(on_hand=3)
    [row] = ledger(product.id)
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        _raw("UPDATE stock_movements SET on_hand_delta = 100 WHERE id = :id", id=row.id)
    db.session.rollback()
    assert ledger(product.id)[0].on_hand_delta == 3


def test_ledger_rows_cannot_be_deleted_on_postgres(product_factory, requires_postgres):
    product = product_factory(on_hand=3)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        _raw("DELETE FROM stock_movements WHERE product_id = :id", id=product.id)
    db.session.rollback()


def test_reconcile_finds_drift_and_repair_fixes_it_with_a_ledger_row(
    product_factory, staff_factory, now
):
    manager = staff_actor(staff_factory, "manager", "boss@example.com")
    held = product_factory("HELD", on_hand=10)
    counted = product_factory("COUNTED", on_hand=10)
    clean = product_factory("CLEAN", on_hand=10)
    services.reserve(held.sku, 2, SESSION, now=now)
    # A bad script that kept each product's totals the sum of its locations.
    for table, key in (("stock_levels", "product_id"), ("products", "id")):
        _raw(f"UPDATE {table} SET reserved = 6 WHERE {key} = :id", id=held.id)
        _raw(f"UPDATE {table} SET on_hand = 14 WHERE {key} = :id", id=counted.id)

    drift = services.reconcile()
    described = sorted(d.describe() for d in drift)
    assert ("HELD at MAIN: the counters say on hand 10, reserved 6; active holds say on hand"
            " 10, reserved 2") in described
    assert ("COUNTED at MAIN: the counters say on hand 14, reserved 0; the ledger says on hand"
            " 10, reserved 0") in described
    assert clean.sku not in " ".join(described)
    assert counters(held.id) == (10, 6)  # reconcile changes nothing

    notes = services.repair(actor=manager, now=now, reason="drift after bad script")

    assert "HELD at MAIN: reserved 6 -> 2" in notes
    assert "COUNTED at MAIN: ledger corrected to on hand 14, reserved 0 (the counters win)" in notes
    assert counters(held.id) == (10, 2)
    assert counters(counted.id) == (14, 0)  # the physical counter is kept; the ledger follows
    repairs = ledger(kind="repair")
    assert repairs and all(r.actor_staff_id == manager.id for r in repairs)
    assert all("drift after bad script" in r.reason for r in repairs)
    assert services.reconcile() == []
    assert services.check() == []


def test_repair_cannot_hold_more_than_on_hand(product_factory, staff_factory, now):
    manager = staff_actor(staff_factory, "manager", "boss@example.com")
    product = product_factory("OVER", on_hand=5)
    services.reserve(product.sku, 4, SESSION, now=now)
    _raw("UPDATE stock_levels SET on_hand = 3, reserved = 3 WHERE product_id = :id", id=product.id)
    _raw("UPDATE products SET on_hand = 3, reserved = 3 WHERE id = :id", id=product.id)
    notes = services.repair(actor=manager, now=now, reason="fix")
    assert "OVER at MAIN: holds (4) exceed on hand; release holds first" in notes
    assert counters(product.id) == (3, 3)


def test_totals_that_are_not_the_sums_of_their_locations_are_reported_and_repaired(
        product_factory, staff_factory, now):
    manager = staff_actor(staff_factory, "manager", "boss@example.com")
    product = product_factory("TOTAL", on_hand=10)
    _raw("UPDATE products SET on_hand = 14 WHERE id = :id", id=product.id)
    problems = services.check()
    assert ("I1 TOTAL: totals on_hand=14 reserved=0 but its locations sum to on_hand=10"
            " reserved=0") in problems
    assert any(p.startswith("I3 TOTAL: counters on_hand=14") for p in problems)  # in total
    notes = services.repair(actor=manager, now=now, reason="fix")
    assert "TOTAL: on hand 14 -> 10 (the totals of its locations)" in notes
    assert counters(product.id) == (10, 0)
    line = db.session.scalars(select(StockMovement).where(StockMovement.kind == "repair")).one()
    assert (line.on_hand_delta, line.reserved_delta, line.on_hand_after) == (0, 0, 10)
    assert "on hand 14 -> 10" in line.reason and line.actor_staff_id == manager.staff_id
    assert services.check() == []


def test_repair_needs_a_reason(staff_factory, now):
    manager = staff_actor(staff_factory, "manager")
    with pytest.raises(services.errors.InvalidInput, match="reason is required"):
        services.repair(actor=manager, now=now, reason="")
