"""Transfers between locations: the figures at both ends and in total through each step,
refusals that change nothing, and staff racing each other or a storefront hold."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import StockLevel, Transfer, TransferLine
from dashboard.services import SYSTEM, Owner
from dashboard.services import transfers
from dashboard.services.errors import (
    InsufficientStock, InvalidInput, MoreThanInTransit, NotFound, TransferWrongState,
    UnknownProduct,
)
from dashboard.services.locations import create_location, find_location
from tests.helpers.records import counters
from tests.services.helpers import ledger, race, snapshot, staff_actor


@pytest.fixture
def shop(now):
    """MAIN (the default warehouse) and a store, STORE-1."""
    create_location("STORE-1", "High Street store", kind="store", priority=10,
                    actor=SYSTEM, now=now)
    return {"MAIN": find_location("MAIN").id, "STORE-1": find_location("STORE-1").id}


@pytest.fixture
def actor(staff_factory):
    return staff_actor(staff_factory, "merchandiser")


def level(product_id: int, location_id: int) -> tuple[int, int]:
    found = db.session.scalars(
        select(StockLevel).where(StockLevel.product_id == product_id,
                                 StockLevel.location_id == location_id)
        .execution_options(populate_existing=True)).one()
    return found.on_hand, found.reserved


def lines_of(transfer_id: int) -> list[tuple[int, int, int]]:
    """(quantity, received, written off) per line, in product order."""
    return [tuple(r) for r in db.session.execute(
        select(TransferLine.quantity, TransferLine.received, TransferLine.written_off)
        .where(TransferLine.transfer_id == transfer_id).order_by(TransferLine.product_id))]


def status_of(transfer_id: int) -> str:
    return db.session.scalar(select(Transfer.status).where(Transfer.id == transfer_id))


def test_full_lifecycle_moves_units_between_levels_and_keeps_every_invariant(
        shop, actor, product_factory, now):
    pen = product_factory("PEN", on_hand=20)
    mug = product_factory("MUG", on_hand=8)
    draft = services.create_transfer("MAIN", "STORE-1", [("PEN", 12), ("MUG", 5)],
                                     "for the window", actor=actor, now=now)
    tid = draft.id
    assert draft.code == "T-00001" and status_of(tid) == "draft"
    assert level(pen.id, shop["MAIN"]) == (20, 0) and ledger(kind="transfer_out") == []

    transfers.ship(tid, actor=actor, now=now)
    assert status_of(tid) == "shipped"
    assert level(pen.id, shop["MAIN"]) == (8, 0) and level(pen.id, shop["STORE-1"]) == (0, 0)
    assert level(mug.id, shop["MAIN"]) == (3, 0)
    # In transit: in no level and not in the product's totals.
    assert counters(pen.id) == (8, 0) and counters(mug.id) == (3, 0)
    out = ledger(kind="transfer_out")
    assert [(m.product_id, m.location_id, m.on_hand_delta, m.transfer_id) for m in out] == [
        (pen.id, shop["MAIN"], -12, tid), (mug.id, shop["MAIN"], -5, tid)]
    assert out[0].actor_staff_id == actor.staff_id and out[0].on_hand_after == 8
    assert services.check() == []

    transfers.receive(tid, {"PEN": 10, mug.id: 5}, actor=actor, now=now)
    assert status_of(tid) == "shipped"  # two PEN still on their way
    assert lines_of(tid) == [(12, 10, 0), (5, 5, 0)]
    assert level(pen.id, shop["STORE-1"]) == (10, 0) and counters(pen.id) == (18, 0)
    assert level(mug.id, shop["STORE-1"]) == (5, 0) and counters(mug.id) == (8, 0)
    assert services.check() == []

    transfers.receive(tid, {"PEN": 1}, actor=actor, now=now)
    done = transfers.write_off(tid, reason="box crushed", actor=actor, now=now)
    assert done.status == "received" and done.closed_at == now
    assert lines_of(tid) == [(12, 11, 1), (5, 5, 0)]
    assert level(pen.id, shop["STORE-1"]) == (11, 0) and counters(pen.id) == (19, 0)
    [gone] = ledger(kind="write_off")
    assert (gone.product_id, gone.location_id, gone.on_hand_delta, gone.transfer_id) == (
        pen.id, shop["STORE-1"], 0, tid)
    assert "1 unit written off" in gone.reason and "box crushed" in gone.reason
    assert [m.on_hand_delta for m in ledger(pen.id, "transfer_in")] == [10, 1]
    assert services.check() == []


def test_ship_refuses_naming_each_short_sku_and_changes_nothing(
        shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    product_factory("MUG", on_hand=4)
    product_factory("CAP", on_hand=9)
    services.reserve("MUG", 3, Owner(session_key="s1"), location="MAIN", now=now)
    draft = services.create_transfer("MAIN", "STORE-1", [("PEN", 6), ("MUG", 2), ("CAP", 9)],
                                     actor=actor, now=now)
    before = snapshot()

    with pytest.raises(InsufficientStock) as refused:
        transfers.ship(draft.id, actor=actor, now=now)

    assert "PEN needs 6, 5 available" in str(refused.value)
    assert "MUG needs 2, 1 available" in str(refused.value)
    assert "CAP" not in str(refused.value) and "at MAIN" in str(refused.value)
    assert refused.value.details["short"] == [
        {"sku": "PEN", "wanted": 6, "available": 5}, {"sku": "MUG", "wanted": 2, "available": 1}]
    assert snapshot() == before and status_of(draft.id) == "draft"


def test_lines_naming_a_product_twice_are_merged(shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    draft = services.create_transfer("MAIN", "STORE-1", [("PEN", 2), ("PEN", 3)],
                                     actor=actor, now=now)
    assert lines_of(draft.id) == [(5, 0, 0)]


@pytest.mark.parametrize("source, destination, lines, error, words", [
    ("MAIN", "MAIN", [("PEN", 1)], InvalidInput, "must be different"),
    ("MAIN", "NOWHERE", [("PEN", 1)], NotFound, "NOWHERE"),
    ("MAIN", "STORE-1", [], InvalidInput, "at least one line"),
    ("MAIN", "STORE-1", [("NOPE-9", 1)], UnknownProduct, "line 1: no product with SKU 'NOPE-9'"),
    ("MAIN", "STORE-1", [("PEN", 1), ("PEN", 0)], InvalidInput, "line 2: quantity must be at least 1"),
    ("MAIN", "STORE-1", [("PEN", -3)], InvalidInput, "at least 1"),
    ("MAIN", "STORE-1", [("PEN", "two")], InvalidInput, "whole number"),
    ("MAIN", "STORE-1", [("PEN", 1.5)], InvalidInput, "whole number"),
    ("MAIN", "STORE-1", [("PEN", 10**12)], InvalidInput, "at most 1,000,000"),
    ("MAIN", "STORE-1", [("PEN", 600_000), ("PEN", 600_000)], InvalidInput, "more than 1,000,000"),
    ("MAIN", "STORE-1", [("PEN",)], InvalidInput, "a SKU and a quantity"),
    ("MAIN", "STORE-1", [("PEN", 1), (None, 1)], InvalidInput, "line 2: sku must be text"),
    ("MAIN", "STORE-1", [("PEN", 1)] * 501, InvalidInput, "at most 500 lines"),
])
def test_create_refuses_bad_input_and_saves_nothing(
        shop, actor, product_factory, now, source, destination, lines, error, words):
    product_factory("PEN", on_hand=5)
    with pytest.raises(error) as refused:
        services.create_transfer(source, destination, lines, actor=actor, now=now)
    assert words in str(refused.value)
    assert db.session.scalar(select(Transfer.id)) is None


def test_create_refuses_a_closed_location(shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    services.locations.update_location("STORE-1", is_active=False, actor=SYSTEM, now=now)
    with pytest.raises(InvalidInput, match="STORE-1 is closed"):
        services.create_transfer("MAIN", "STORE-1", [("PEN", 1)], actor=actor, now=now)


def test_receiving_more_than_in_transit_is_refused_naming_the_line(
        shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    product_factory("MUG", on_hand=5)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 3), ("MUG", 2)],
                                   actor=actor, now=now).id
    transfers.ship(tid, actor=actor, now=now)
    transfers.receive(tid, {"PEN": 2}, actor=actor, now=now)
    before = snapshot()

    with pytest.raises(MoreThanInTransit) as refused:
        transfers.receive(tid, {"PEN": 2, "MUG": 1}, actor=actor, now=now)
    assert "PEN has 1 in transit, not 2" in str(refused.value)
    assert refused.value.details["lines"] == [{"sku": "PEN", "in_transit": 1, "asked": 2}]
    for quantities, words in [({"PEN": 0}, "at least one unit"), ({"CAP-1": 1}, "CAP-1"),
                              ({"PEN": -1}, "at least 0"), ({"PEN": "x"}, "whole number")]:
        with pytest.raises((InvalidInput, NotFound), match=words):
            transfers.receive(tid, quantities, actor=actor, now=now)
    assert snapshot() == before
    product_factory("CAP", on_hand=1)
    before = snapshot()
    with pytest.raises(InvalidInput, match="CAP is not on T-00001"):
        transfers.receive(tid, {"CAP": 1}, actor=actor, now=now)
    assert snapshot() == before and lines_of(tid) == [(3, 2, 0), (2, 0, 0)]


def test_write_off_needs_a_reason_and_only_takes_what_is_in_transit(
        shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 4)], actor=actor, now=now).id
    transfers.ship(tid, actor=actor, now=now)
    with pytest.raises(InvalidInput, match="reason is required"):
        transfers.write_off(tid, reason="  ", actor=actor, now=now)
    with pytest.raises(MoreThanInTransit):
        transfers.write_off(tid, {"PEN": 5}, reason="lost", actor=actor, now=now)
    transfers.write_off(tid, {"PEN": 1}, reason="lost", actor=actor, now=now)
    assert status_of(tid) == "shipped" and lines_of(tid) == [(4, 0, 1)]
    transfers.receive(tid, actor=actor, now=now)  # the rest, all of it
    assert status_of(tid) == "received" and lines_of(tid) == [(4, 3, 1)]
    with pytest.raises(TransferWrongState, match="already received"):
        transfers.write_off(tid, reason="lost", actor=actor, now=now)
    assert services.check() == []


def test_steps_out_of_order_are_refused_with_the_status(shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 1)], actor=actor, now=now).id
    with pytest.raises(TransferWrongState, match="still a draft"):
        transfers.receive(tid, actor=actor, now=now)
    transfers.ship(tid, actor=actor, now=now)
    before = snapshot()
    with pytest.raises(TransferWrongState, match="already shipped"):
        transfers.ship(tid, actor=actor, now=now)
    with pytest.raises(TransferWrongState, match="receive its units or write off"):
        transfers.cancel(tid, actor=actor, now=now)
    assert snapshot() == before
    with pytest.raises(NotFound):
        transfers.ship(99_999, actor=actor, now=now)


def test_cancel_drops_a_draft_without_moving_stock(shop, actor, product_factory, now):
    pen = product_factory("PEN", on_hand=5)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 5)], actor=actor, now=now).id
    before = snapshot()
    cancelled = transfers.cancel(tid, actor=actor, now=now)
    assert cancelled.status == "cancelled" and cancelled.closed_at == now
    assert snapshot() == before and level(pen.id, shop["MAIN"]) == (5, 0)
    with pytest.raises(TransferWrongState, match="was cancelled"):
        transfers.ship(tid, actor=actor, now=now)


def test_shipping_the_last_units_opens_the_out_of_stock_alert_at_once(
        shop, actor, product_factory, now):
    pen = product_factory("PEN", on_hand=3, threshold=1)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 3)], actor=actor, now=now).id
    transfers.ship(tid, actor=actor, now=now)
    assert services.check() == []  # I5: the alert matches the totals (0 while in transit)
    from tests.services.helpers import unresolved_alert
    assert unresolved_alert(pen.id).kind == "OUT_OF_STOCK"
    transfers.receive(tid, actor=actor, now=now)
    assert unresolved_alert(pen.id) is None and services.check() == []


def test_check_finds_a_transfer_line_the_ledger_does_not_explain(
        shop, actor, product_factory, now):
    product_factory("PEN", on_hand=5)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 2)], actor=actor, now=now).id
    transfers.ship(tid, actor=actor, now=now)
    db.session.execute(TransferLine.__table__.update().values(received=1))
    db.session.commit()
    [problem] = services.check()
    assert problem.startswith("transfer T-00001 PEN") and "received 0" in problem


def test_two_staff_shipping_one_draft_at_once_ship_it_once(
        wide_app, shop, actor, product_factory, now, requires_postgres):
    pen = product_factory("PEN", on_hand=10)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 4)], actor=actor, now=now).id

    results = race(wide_app, 8, lambda i: transfers.ship(tid, actor=actor, now=now).id)

    assert results.count(tid) == 1
    refusals = [r for r in results if r != tid]
    assert all(isinstance(r, TransferWrongState) and "already shipped" in str(r)
               for r in refusals), refusals
    assert level(pen.id, shop["MAIN"]) == (6, 0) and len(ledger(kind="transfer_out")) == 1
    assert services.check() == []


def test_two_receipts_of_the_last_units_at_once_receive_them_once(
        wide_app, shop, actor, product_factory, now, requires_postgres):
    pen = product_factory("PEN", on_hand=10)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 4)], actor=actor, now=now).id
    transfers.ship(tid, actor=actor, now=now)

    results = race(wide_app, 8, lambda i: transfers.receive(
        tid, {"PEN": 4}, actor=actor, now=now).status)

    assert results.count("received") == 1
    assert all(isinstance(r, TransferWrongState) for r in results if r != "received"), results
    assert level(pen.id, shop["STORE-1"]) == (4, 0) and services.check() == []


def test_ship_racing_storefront_holds_for_the_last_units_never_oversells(
        wide_app, shop, actor, product_factory, now, requires_postgres):
    pen = product_factory("PEN", on_hand=5)
    # Only MAIN sells, so every hold races the shipment for the same five units.
    services.locations.update_location("STORE-1", sellable=False, actor=SYSTEM, now=now)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 5)], actor=actor, now=now).id

    def work(i):
        if i == 0:
            return transfers.ship(tid, actor=actor, now=now).status
        return services.reserve("PEN", 1, Owner(session_key=f"s{i}"), now=now).quantity

    results = race(wide_app, 12, work)

    unexpected = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, InsufficientStock)]
    assert unexpected == []
    held = results.count(1)
    on_hand, reserved = level(pen.id, shop["MAIN"])
    if results[0] == "shipped":
        assert held == 0 and (on_hand, reserved) == (0, 0)
    else:
        assert isinstance(results[0], InsufficientStock) and held == 5
        assert (on_hand, reserved) == (5, 5)
    assert services.check() == []


def test_two_drafts_racing_for_the_same_last_units_ship_one(
        wide_app, shop, actor, product_factory, now, requires_postgres):
    pen = product_factory("PEN", on_hand=5)
    drafts = [services.create_transfer("MAIN", "STORE-1", [("PEN", 5)], actor=actor,
                                       now=now).id for _ in range(6)]

    results = race(wide_app, len(drafts), lambda i: transfers.ship(
        drafts[i], actor=actor, now=now).status)

    assert results.count("shipped") == 1
    assert all(isinstance(r, InsufficientStock) and "0 available" in str(r)
               for r in results if r != "shipped"), results
    assert level(pen.id, shop["MAIN"]) == (0, 0) and services.check() == []


def test_a_receipt_racing_a_write_off_of_the_same_units_settles_them_once(
        wide_app, shop, actor, product_factory, now, requires_postgres):
    pen = product_factory("PEN", on_hand=5)
    tid = services.create_transfer("MAIN", "STORE-1", [("PEN", 5)], actor=actor, now=now).id
    transfers.ship(tid, actor=actor, now=now)

    def work(i):
        if i % 2:
            return transfers.receive(tid, {"PEN": 5}, actor=actor, now=now).status
        return transfers.write_off(tid, reason="lost", actor=actor, now=now).status

    results = race(wide_app, 8, work)

    assert results.count("received") == 1  # whichever came first closed the transfer
    assert all(isinstance(r, TransferWrongState) for r in results if r != "received"), results
    [(quantity, received, written_off)] = lines_of(tid)
    assert (received, written_off) in ((5, 0), (0, 5))
    assert level(pen.id, shop["STORE-1"]) == (received, 0) and services.check() == []
