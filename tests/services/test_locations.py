"""services.locations: adding a location (with its levels), changing one, closing it only
when it is empty, and exactly one default."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Location, StockLevel, Transfer
from dashboard.queries.stock import catalogue_counts
from dashboard.services import SYSTEM, Owner
from dashboard.services.catalogue import upsert_product
from dashboard.services.errors import Conflict, InvalidInput
from dashboard.services.locations import (
    UnknownLocation,
    all_locations,
    create_location,
    default_location,
    find_location,
    update_location,
)


def levels_at(location: Location) -> list[tuple[int, int]]:
    rows = db.session.execute(select(StockLevel.on_hand, StockLevel.reserved)
                              .where(StockLevel.location_id == location.id)).all()
    return [tuple(r) for r in rows]


def test_a_new_location_has_an_empty_level_for_every_product(product_factory, now):
    product_factory("RED-1", on_hand=5), product_factory("BLUE-1", on_hand=3)
    store = create_location(" store-1 ", " High Street ", kind="store", priority=10,
                            actor=SYSTEM, now=now)
    assert (store.code, store.name, store.is_active, store.is_default) == (
        "STORE-1", "High Street", True, False)
    assert levels_at(store) == [(0, 0), (0, 0)]
    later = product_factory("GREEN-1", on_hand=4)  # and a product made later has one there too
    assert db.session.scalar(select(StockLevel.on_hand).where(
        StockLevel.product_id == later.id, StockLevel.location_id == store.id)) == 0
    assert [loc.code for loc in all_locations()] == ["MAIN", "STORE-1"]
    assert find_location("Store-1") is store and find_location(store.id) is store


@pytest.mark.parametrize("code, name, kind, priority, field", [
    ("", "Shop", "store", 1, "code"), ("TWO WORDS", "Shop", "store", 1, "code"),
    ("X" * 21, "Shop", "store", 1, "code"), (None, "Shop", "store", 1, "code"),
    ("OK", "", "store", 1, "name"), ("OK", "n" * 101, "store", 1, "name"),
    ("OK", "Shop", "castle", 1, "kind"), ("OK", "Shop", "store", -1, "priority"),
    ("OK", "Shop", "store", 10_001, "priority"), ("OK", "Shop", "store", True, "priority"),
    ("OK", "Shop", "store", 2.5, "priority"),
])
def test_bad_values_are_refused_and_add_nothing(now, code, name, kind, priority, field):
    with pytest.raises(InvalidInput) as refused:
        create_location(code, name, kind=kind, priority=priority, actor=SYSTEM, now=now)
    assert field in refused.value.fields
    assert [loc.code for loc in all_locations()] == ["MAIN"]


def test_a_code_is_unique_whatever_its_case(now):
    with pytest.raises(Conflict, match="MAIN already exists"):
        create_location("main", "Another", actor=SYSTEM, now=now)
    assert db.session.scalar(select(func.count()).select_from(Location)) == 1


def test_update_changes_only_what_is_given(now):
    store = create_location("STORE-1", "Shop", kind="store", priority=10, actor=SYSTEM, now=now)
    update_location("store-1", name="Outlet", sellable=False, actor=SYSTEM, now=now)
    db.session.expire_all()
    found = find_location("STORE-1")
    assert (found.name, found.kind, found.sellable, found.priority) == ("Outlet", "store",
                                                                        False, 10)
    with pytest.raises(InvalidInput):
        update_location(store.id, priority=-5, actor=SYSTEM, now=now)
    with pytest.raises(UnknownLocation):
        update_location("NOPE", name="x", actor=SYSTEM, now=now)
    db.session.expire_all()
    assert find_location("STORE-1").priority == 10


def test_make_default_moves_the_flag(now):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    update_location(store, make_default=True, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert default_location().code == "STORE-1"
    assert db.session.scalar(select(func.count()).where(Location.is_default)) == 1
    closed = create_location("OLD", "Old", actor=SYSTEM, now=now)
    update_location(closed, is_active=False, actor=SYSTEM, now=now)
    with pytest.raises(Conflict, match="closed"):
        update_location(closed, make_default=True, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert default_location().code == "STORE-1"


def test_the_default_cannot_be_closed(now):
    with pytest.raises(Conflict, match="default location"):
        update_location("MAIN", is_active=False, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert find_location("MAIN").is_active


def test_closing_is_refused_while_stock_or_holds_are_there(product_factory, now):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    red = product_factory("RED-1", on_hand=0)
    services.adjust(red.id, 3, reason="delivery", location="STORE-1", actor=SYSTEM, now=now)
    services.reserve(red.id, 1, Owner(session_key="s"), location="STORE-1", now=now)
    with pytest.raises(Conflict, match="3 units on hand \\(1 held\\)"):
        update_location(store, is_active=False, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert find_location("STORE-1").is_active
    # It may stop selling instead: new holds go elsewhere, its hold runs its course.
    update_location(store, sellable=False, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert not find_location("STORE-1").sellable


@pytest.mark.parametrize("status, refused", [("draft", True), ("shipped", True),
                                             ("received", False), ("cancelled", False)])
def test_closing_is_refused_while_a_transfer_is_open(now, status, refused):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    db.session.add(Transfer(source_id=default_location().id, destination_id=store.id,
                            status=status, created_at=now, updated_at=now))
    db.session.commit()
    if refused:
        with pytest.raises(Conflict, match="1 open transfers"):
            update_location(store, is_active=False, actor=SYSTEM, now=now)
    else:
        update_location(store, is_active=False, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert find_location("STORE-1").is_active is refused


def test_a_closed_location_takes_no_holds_and_reopens(product_factory, now):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    product_factory("RED-1", on_hand=5)
    update_location(store, is_active=False, actor=SYSTEM, now=now)
    with pytest.raises(InvalidInput, match="STORE-1 is closed"):
        services.reserve("RED-1", 1, Owner(session_key="s"), location="STORE-1", now=now)
    update_location(store, is_active=True, actor=SYSTEM, now=now)
    db.session.expire_all()
    assert find_location("STORE-1").is_active


def copies_at(location: Location) -> dict[int, tuple[int, bool]]:
    return {product_id: (threshold, active) for product_id, threshold, active in db.session.execute(
        select(StockLevel.product_id, StockLevel.product_threshold, StockLevel.product_is_active)
        .where(StockLevel.location_id == location.id))}


def tabs_at(location: Location) -> dict[str, int]:
    counts = catalogue_counts(location.id)
    return {"low": counts["low"], "out": counts["out"]}


def test_levels_follow_their_products_threshold_and_active_flag(product_factory, now):
    # Each level carries its product's threshold and is_active for one location's low and out
    # tabs (ix_stock_levels_alerting); the foreign key cascades every change of the product's.
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    red = product_factory("RED-1", on_hand=20, threshold=10)
    blue = product_factory("BLUE-1", on_hand=20, threshold=10)
    services.adjust(red.id, 4, reason="delivery", location="STORE-1", actor=SYSTEM, now=now)
    services.adjust(blue.id, 12, reason="delivery", location="STORE-1", actor=SYSTEM, now=now)
    assert copies_at(store) == {red.id: (10, True), blue.id: (10, True)}
    assert tabs_at(store) == {"low": 1, "out": 0}  # red: 4 at or below 10

    services.update_product(red.id, low_stock_threshold=3, actor=SYSTEM, now=now)
    services.update_product(blue.id, low_stock_threshold=15, actor=SYSTEM, now=now)
    assert copies_at(store) == {red.id: (3, True), blue.id: (15, True)}
    assert tabs_at(store) == {"low": 1, "out": 0}  # now blue: 12 at or below 15
    services.update_product(blue.id, is_active=False, actor=SYSTEM, now=now)
    assert copies_at(store)[blue.id] == (15, False) and tabs_at(store) == {"low": 0, "out": 0}
    upsert_product("RED-1", {"low_stock_threshold": 4}, actor=SYSTEM, now=now)
    assert copies_at(store)[red.id] == (4, True) and tabs_at(store) == {"low": 1, "out": 0}
    main = default_location()
    assert copies_at(main) == {red.id: (4, True), blue.id: (15, False)}


def test_a_level_whose_copy_differs_from_its_product_is_refused_by_the_database(
        product_factory, now):
    red = product_factory("RED-1", on_hand=5, threshold=10)
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE stock_levels SET product_threshold = 99"
                                " WHERE product_id = :id"), {"id": red.id})
    db.session.rollback()
    assert copies_at(default_location()) == {red.id: (10, True)}
