"""adjust / count / import_counts: corrections by staff, never below the held units."""
from __future__ import annotations

import pytest

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product
from dashboard.services.errors import BelowHeld, ImportRejected, InvalidInput, StaleCount
from tests.helpers.records import counters, high_street_store, level_at
from tests.services.helpers import SESSION, ledger, snapshot, staff_actor, unresolved_alert


@pytest.fixture
def merch(staff_factory):
    return staff_actor(staff_factory, "merchandiser", "merch@example.com")


def test_adjust_changes_on_hand_and_records_the_reason(product_factory, merch, now):
    product = product_factory(on_hand=10)
    updated = services.adjust(product.sku, -3, reason="damaged in transit", actor=merch, now=now)
    assert (updated.on_hand, updated.reserved) == (7, 0)
    [row] = ledger(product.id, "adjust")
    assert (row.on_hand_delta, row.on_hand_after, row.reason, row.actor_staff_id) == (
        -3, 7, "damaged in transit", merch.id)
    services.adjust(product.sku, 5, reason="delivery", actor=merch, now=now, kind="receive")
    assert counters(product.id) == (12, 0)
    assert ledger(product.id, "receive")[-1].on_hand_delta == 5
    assert services.check() == []


def test_adjust_below_held_names_the_held_units(product_factory, merch, now):
    product = product_factory(on_hand=20)
    services.reserve(product.sku, 12, SESSION, now=now)
    before = snapshot()

    with pytest.raises(BelowHeld) as refused:
        services.adjust(product.sku, -9, reason="shrinkage", actor=merch, now=now)

    assert str(refused.value) == "12 units are held; on hand cannot go below 12"
    assert refused.value.held == 12
    assert snapshot() == before


def test_adjust_below_zero_is_refused(product_factory, merch, now):
    product = product_factory("ZERO", on_hand=3)
    with pytest.raises(BelowHeld, match=r"below 0 \(ZERO has 3\)"):
        services.adjust(product.sku, -4, reason="x", actor=merch, now=now)
    assert counters(product.id) == (3, 0)


def test_adjust_to_exactly_the_held_units_is_allowed(product_factory, merch, now):
    product = product_factory(on_hand=20)
    services.reserve(product.sku, 12, SESSION, now=now)
    services.adjust(product.sku, -8, reason="recount", actor=merch, now=now)
    assert counters(product.id) == (12, 12)
    assert services.check() == []


def test_receipt_cannot_remove_units(product_factory, merch, now):
    product = product_factory()
    with pytest.raises(InvalidInput, match="receipt adds units"):
        services.adjust(product.sku, -1, reason="x", actor=merch, now=now, kind="receive")


def test_count_sets_on_hand_when_nothing_changed(product_factory, merch, now):
    product = product_factory(on_hand=10)
    updated = services.count(product.sku, 7, 10, actor=merch, now=now, note="aisle 4")
    assert updated.on_hand == 7
    assert updated.last_stock_check == now
    [row] = ledger(product.id, "count")
    assert (row.on_hand_delta, row.on_hand_after, row.reason) == (-3, 7, "aisle 4")
    assert services.check() == []


def test_count_on_a_stale_page_is_refused(product_factory, merch, now):
    product = product_factory(on_hand=10)
    services.adjust(product.sku, 2, reason="found a box", actor=merch, now=now)
    before = snapshot()

    with pytest.raises(StaleCount) as refused:
        services.count(product.sku, 8, 10, actor=merch, now=now)

    assert str(refused.value).startswith("stock changed since you loaded this page")
    assert "now 12" in str(refused.value)
    assert refused.value.current_on_hand == 12
    assert snapshot() == before


def test_count_below_held_is_refused(product_factory, merch, now):
    product = product_factory(on_hand=20)
    services.reserve(product.sku, 12, SESSION, now=now)
    before = snapshot()
    with pytest.raises(BelowHeld, match="12 units are held; on hand cannot go below 12"):
        services.count(product.sku, 11, 20, actor=merch, now=now)
    assert snapshot() == before


def test_adjust_and_count_evaluate_alerts(product_factory, merch, now):
    product = product_factory(on_hand=10, threshold=3)
    services.adjust(product.sku, -8, reason="x", actor=merch, now=now)
    assert unresolved_alert(product.id).kind == "LOW_STOCK"
    services.count(product.sku, 0, 2, actor=merch, now=now)
    assert unresolved_alert(product.id).kind == "OUT_OF_STOCK"
    services.count(product.sku, 9, 0, actor=merch, now=now)
    assert unresolved_alert(product.id) is None
    assert services.check() == []


# --- import -------------------------------------------------------------------------------


def test_import_dry_run_reports_each_bad_row_and_changes_nothing(product_factory, merch, now):
    product_factory("IMP-A", on_hand=10)
    product_factory("IMP-B", on_hand=10)
    product_factory("IMP-C", on_hand=1)
    d = product_factory("IMP-D", on_hand=10)
    services.reserve(d.sku, 6, SESSION, now=now)
    csv_text = (
        "sku,on_hand\n"
        "IMP-A,4\n"      # 2: fine
        "NOPE,3\n"       # 3: unknown
        "IMP-A,5\n"      # 4: duplicate
        "IMP-B,lots\n"   # 5: text
        "IMP-C,1\n"      # 6: fine, no change
        "IMP-B,-2\n"     # 7: duplicate of line 5 (reported as such, not as negative)
        "IMP-D,5\n"      # 8: below held
        "\n"
        "IMP-E,-2\n"     # 10: unknown
    )
    before = snapshot()

    report = services.import_counts(csv_text, actor=merch, now=now)

    errors = {row.line: row.error for row in report.errors}
    assert errors == {
        3: "unknown SKU NOPE",
        4: "SKU IMP-A appears again (first on line 2)",
        5: "on hand must be a whole number (got 'lots')",
        7: "SKU IMP-B appears again (first on line 5)",
        8: "6 units are held; on hand cannot go below 6",
        10: "unknown SKU IMP-E",
    }
    assert [(r.line, r.delta) for r in report.changes] == [(2, -6)]
    assert not report.applied
    assert snapshot() == before

    with pytest.raises(ImportRejected) as refused:
        services.import_counts(csv_text, actor=merch, now=now, apply=True)
    assert str(refused.value) == "6 of 8 rows are wrong; nothing was changed"
    assert len(refused.value.report.errors) == 6
    assert snapshot() == before  # the good row was not applied either


def test_import_negative_count_is_a_bad_row(product_factory, merch, now):
    product_factory("IMP-A", on_hand=10)
    report = services.import_counts("sku,on_hand\nIMP-A,-2\n", actor=merch, now=now)
    assert report.errors[0].error == "on hand must be at least 0 (got '-2')"


def test_import_apply_changes_all_rows_in_one_go_and_evaluates_alerts(
    product_factory, merch, now
):
    a = product_factory("IMP-A", on_hand=10, threshold=3)
    b = product_factory("IMP-B", on_hand=1, threshold=3)
    c = product_factory("IMP-C", on_hand=5, threshold=3)
    services.evaluate_alerts(now=now)
    assert unresolved_alert(b.id).kind == "LOW_STOCK"

    report = services.import_counts("sku,on_hand\nIMP-A,0\nIMP-B,20\nIMP-C,5\n", actor=merch,
                                    now=now, apply=True)

    assert report.applied
    assert counters(a.id) == (0, 0) and counters(b.id) == (20, 0) and counters(c.id) == (5, 0)
    assert [(r.product_id, r.on_hand_delta) for r in ledger(kind="import")] == [
        (a.id, -10), (b.id, 19)]
    assert unresolved_alert(a.id).kind == "OUT_OF_STOCK"
    assert unresolved_alert(b.id) is None
    assert {db.session.get(Product, p.id).last_stock_check for p in (a, b, c)} == {now}
    assert services.check() == []


def test_import_deltas(product_factory, merch, now):
    a = product_factory("IMP-A", on_hand=10)
    services.import_counts("sku,delta\nIMP-A,-4\n", actor=merch, now=now, apply=True)
    assert counters(a.id) == (6, 0)
    report = services.import_counts("sku,delta\nIMP-A,-7\n", actor=merch, now=now)
    assert "on hand cannot go below 0" in report.errors[0].error


def test_import_apply_refuses_when_on_hand_moved_since_the_dry_run(product_factory, merch, now):
    a = product_factory("IMP-A", on_hand=112)
    b = product_factory("IMP-B", on_hand=5)
    text = "sku,on_hand\nIMP-A,110\nIMP-B,4\n"
    dry_run = services.import_counts(text, actor=merch, now=now)
    assert dry_run.on_hand_seen == [112, 5]
    services.adjust(a.id, 5, reason="tab two", actor=merch, now=now)
    moves = len(ledger())

    with pytest.raises(ImportRejected, match="Stock changed since you checked the file") as refused:
        services.import_counts(text, actor=merch, now=now, apply=True,
                               on_hand_seen=dry_run.on_hand_seen)
    assert [(r.sku, r.seen_on_hand, r.on_hand_before) for r in refused.value.report.stale] == [
        ("IMP-A", 112, 117)]
    assert counters(a.id) == (117, 0) and counters(b.id) == (5, 0) and len(ledger()) == moves

    report = services.import_counts(text, actor=merch, now=now,
                                    apply=True, on_hand_seen=refused.value.report.on_hand_seen)
    assert report.applied and counters(a.id) == (110, 0) and counters(b.id) == (4, 0)


@pytest.mark.parametrize("csv_text,message", [
    ("", "header"),
    ("sku,qty\nA,1\n", "header"),
    ("sku,on_hand\n", "no rows"),
])
def test_import_with_a_bad_file_is_refused(csv_text, message, merch, now):
    with pytest.raises(InvalidInput, match=message):
        services.import_counts(csv_text, actor=merch, now=now)


def test_an_import_of_70000_rows_is_applied_not_a_bind_parameter_error(merch, now,
                                                                      requires_postgres):
    """More rows than PostgreSQL's 65,535 (and SQLite's 32,766) bind parameters per statement."""
    from sqlalchemy import func, insert, select

    from dashboard.models import StockMovement

    rows = 70_000
    db.session.execute(insert(Product), [
        {"sku": f"BULK-{n:05d}", "name": f"Bulk {n}", "on_hand": 5, "reserved": 0,
         "low_stock_threshold": 0, "created_at": now, "updated_at": now}
        for n in range(rows)
    ])
    from dashboard.services.locations import add_levels
    add_levels({pid: 5 for pid in db.session.scalars(select(Product.id))})
    db.session.commit()
    text = "sku,on_hand\n" + "".join(f"BULK-{n:05d},7\n" for n in range(rows))
    report = services.import_counts(text, actor=merch, now=now, apply=True)
    assert report.applied and len(report.changes) == rows
    assert db.session.scalar(select(func.sum(Product.on_hand))) == 7 * rows
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == rows


def test_a_csv_field_over_the_csv_modules_limit_is_a_bad_file(merch, now):
    text = 'sku,on_hand\n"' + "x" * 140_000 + '",1\n'
    with pytest.raises(InvalidInput, match="line 2 is not valid CSV"):
        services.import_counts(text, actor=merch, now=now)


# --- count import per location ----------------------------------------------------------------

def test_import_with_a_location_column_counts_each_level(product_factory, merch, now):
    high_street_store(now)
    a = product_factory("IMP-A", on_hand=10)
    services.adjust(a.id, 4, reason="delivery", location="STORE-1", actor=merch, now=now)
    text = "location,sku,on_hand\nstore-1,IMP-A,6\n,IMP-A,9\n"  # blank: the default location
    report = services.import_counts(text, actor=merch, now=now, apply=True)
    assert report.applied and report.by_location
    assert [(r.location, r.on_hand_before, r.on_hand_after) for r in report.rows] == [
        ("store-1", 4, 6), ("", 10, 9)]
    assert level_at(a.id, "STORE-1").on_hand == 6 and level_at(a.id, "MAIN").on_hand == 9
    assert counters(a.id) == (15, 0)
    assert level_at(a.id, "STORE-1").last_stock_check == now
    assert {(m.location_id, m.on_hand_delta) for m in ledger(a.id, "import")} == {
        (level_at(a.id, "STORE-1").location_id, 2), (level_at(a.id, "MAIN").location_id, -1)}
    assert services.check() == []


def test_import_without_a_location_column_is_at_the_default_location(product_factory, merch, now):
    high_street_store(now)
    a = product_factory("IMP-A", on_hand=10)
    report = services.import_counts("sku,delta\nIMP-A,5\n", actor=merch, now=now, apply=True)
    assert not report.by_location
    assert level_at(a.id, "MAIN").on_hand == 15 and level_at(a.id, "STORE-1").on_hand == 0


def test_import_names_unknown_locations_and_repeats_per_location(product_factory, merch, now):
    high_street_store(now)
    a = product_factory("IMP-A", on_hand=10)
    services.adjust(a.id, 3, reason="delivery", location="STORE-1", actor=merch, now=now)
    services.reserve(a.sku, 3, SESSION, now=now, location="STORE-1")
    text = ("sku,on_hand,location\n"
            "IMP-A,5,MAIN\n"      # 2: fine
            "IMP-A,5,STORE-1\n"   # 3: fine, the same SKU at another location
            "IMP-A,6,\n"          # 4: blank is MAIN: a repeat of line 2
            "IMP-A,1,NOWHERE\n"   # 5: unknown location
            "imp-a,7,store-1\n")  # 6: a repeat of line 3 (any case)
    report = services.import_counts(text, actor=merch, now=now)
    assert {row.line: row.error for row in report.errors} == {
        4: "SKU IMP-A at MAIN appears again (first on line 2)",
        5: "unknown location NOWHERE",
        6: "SKU imp-a at STORE-1 appears again (first on line 3)",
    }
    held = services.import_counts("sku,on_hand,location\nIMP-A,2,STORE-1\n", actor=merch, now=now)
    assert held.errors[0].error == "3 units are held at STORE-1; on hand there cannot go below 3"


def test_import_staleness_is_per_location(product_factory, merch, now):
    high_street_store(now)
    a = product_factory("IMP-A", on_hand=10)
    text = "sku,on_hand,location\nIMP-A,8,MAIN\nIMP-A,2,STORE-1\n"
    dry_run = services.import_counts(text, actor=merch, now=now)
    assert dry_run.on_hand_seen == [10, 0]
    # A change at STORE-1 makes only that row stale; MAIN's row is as it was checked.
    services.adjust(a.id, 1, reason="found one", location="STORE-1", actor=merch, now=now)
    with pytest.raises(ImportRejected) as refused:
        services.import_counts(text, actor=merch, now=now, apply=True,
                               on_hand_seen=dry_run.on_hand_seen)
    assert [(r.line, r.seen_on_hand, r.on_hand_before) for r in refused.value.report.stale] == [
        (3, 0, 1)]
    assert counters(a.id) == (11, 0)
    report = services.import_counts(text, actor=merch, now=now, apply=True,
                                    on_hand_seen=refused.value.report.on_hand_seen)
    assert report.applied and counters(a.id) == (10, 0) and services.check() == []


@pytest.mark.parametrize("header", ["sku,on_hand,delta", "sku,location", "sku,on_hand,location,location",
                                    "sku,on_hand,where"])
def test_import_with_a_bad_location_header_is_refused(header, merch, now):
    with pytest.raises(InvalidInput, match="optional 'location' column"):
        services.import_counts(header + "\nA,1,B\n", actor=merch, now=now)
