"""Real threads racing on one product stocked at two locations: never oversold at a level or
in total, every refusal a clean one, each hold ended once, and `check` clean after.

The product's default-location level (MAIN) is empty, so a hold that names no location is
placed by allocation over three levels, two of which have stock. PostgreSQL runs the races
wide (64 threads); SQLite narrower, on its one writer.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Location, Reservation, StockLevel
from dashboard.services import SYSTEM, Owner
from dashboard.services.errors import (
    BelowHeld, InsufficientStock, ReservationNotActive, StaleCount,
)
from dashboard.services.locations import create_location
from tests.helpers.records import counters
from tests.services.helpers import ledger, race


def _unexpected(results, *allowed) -> list:
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]


def _two_places(now, product_factory, north: int, east: int, sku: str = "TWO"):
    """A product with `north` units at NORTH, `east` at EAST and none at MAIN."""
    create_location("NORTH", "North warehouse", priority=10, actor=SYSTEM, now=now)
    create_location("EAST", "East store", kind="store", priority=20, actor=SYSTEM, now=now)
    product = product_factory(sku, on_hand=0, threshold=2)
    for code, units in (("NORTH", north), ("EAST", east)):
        if units:
            services.adjust(sku, units, kind="receive", reason="delivery", location=code,
                            actor=SYSTEM, now=now)
    return product


def _levels(product_id: int) -> dict[str, tuple[int, int]]:
    """{location code: (on_hand, reserved)} of the product, read fresh."""
    rows = db.session.execute(
        select(Location.code, StockLevel.on_hand, StockLevel.reserved)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.product_id == product_id)).all()
    db.session.commit()
    return {code: (on_hand, reserved) for code, on_hand, reserved in rows}


def _active_holds(product_id: int) -> Counter:
    """Units held by active holds at each location code."""
    rows = db.session.execute(
        select(Location.code, Reservation.quantity)
        .join(Location, Location.id == Reservation.location_id)
        .where(Reservation.product_id == product_id, Reservation.status == "active")).all()
    db.session.commit()
    held = Counter()
    for code, quantity in rows:
        held[code] += quantity
    return held


def test_threads_naming_either_location_or_none_never_oversell_a_level(
    wide_app, threads, product_factory, now
):
    stock = threads // 4  # per location: two locations hold half of what is asked for
    product = _two_places(now, product_factory, stock, stock)
    wanted = ["NORTH", "EAST", None]

    def work(i):
        hold = services.reserve("TWO", 1, Owner(session_key=f"s{i}"),
                                location=wanted[i % 3], now=now)
        return hold.id, hold.location_id

    results = race(wide_app, threads, work)

    assert _unexpected(results, InsufficientStock) == []
    codes = dict(db.session.execute(select(Location.id, Location.code)).all())
    placed = Counter()
    for i, result in enumerate(results):
        if isinstance(result, tuple):
            code = codes[result[1]]
            assert wanted[i % 3] in (None, code), f"hold asked for {wanted[i % 3]} is at {code}"
            placed[code] += 1
    levels = _levels(product.id)
    assert levels["MAIN"] == (0, 0)
    for code in ("NORTH", "EAST"):
        on_hand, reserved = levels[code]
        assert on_hand == stock and reserved == placed[code] <= on_hand
    assert _active_holds(product.id) == +placed
    assert counters(product.id) == (2 * stock, sum(placed.values()))
    # Stock only ran down during the race: whoever was refused met a level that was full
    # (a named one) or found every level full (allocation), and it stays so.
    for i, result in enumerate(results):
        if isinstance(result, InsufficientStock):
            full = [wanted[i % 3]] if wanted[i % 3] else ["NORTH", "EAST"]
            assert all(levels[code][0] == levels[code][1] for code in full), (i, result)
    assert len(ledger(product.id, "reserve")) == sum(placed.values())
    assert services.check() == []


def test_adjusts_and_counts_at_one_location_racing_holds_at_the_other(
    wide_app, threads, product_factory, now
):
    holders = threads // 2
    east = holders - threads // 8  # fewer units than holders: some are refused
    product = _two_places(now, product_factory, 40, east)
    services.reserve("TWO", 3, Owner(session_key="early"), location="NORTH", now=now)
    product_id = product.id  # read here: the object belongs to this thread's session

    def work(i):
        if i % 4 == 0:
            return services.adjust("TWO", -1, reason="damaged", location="NORTH",
                                   actor=SYSTEM, now=now).on_hand
        if i % 4 == 1:
            seen = _levels(product_id)["NORTH"][0]  # what the counter saw, then counts
            return services.count("TWO", seen + 1, seen, location="NORTH", actor=SYSTEM,
                                  now=now).on_hand
        return services.reserve("TWO", 1, Owner(session_key=f"s{i}"), location="EAST",
                                now=now).location_id

    results = race(wide_app, threads, work)

    assert _unexpected(results, InsufficientStock, StaleCount, BelowHeld) == []
    held_east = sum(1 for i, r in enumerate(results) if i % 4 >= 2 and isinstance(r, int))
    assert held_east == east  # NORTH's changes never took or hid a unit at EAST
    adjusts = sum(1 for i, r in enumerate(results) if i % 4 == 0 and isinstance(r, int))
    counted = sum(1 for i, r in enumerate(results) if i % 4 == 1 and isinstance(r, int))
    assert adjusts == threads // 4  # 40 units, 3 held: every -1 fits
    stale = sum(1 for i, r in enumerate(results) if i % 4 == 1 and isinstance(r, StaleCount))
    assert counted + stale == threads // 4  # a count lands or is told the figure moved
    levels = _levels(product.id)
    assert levels["NORTH"] == (40 - adjusts + counted, 3)
    assert levels["EAST"] == (east, east)
    assert counters(product.id) == (40 - adjusts + counted + east, 3 + east)
    assert services.check() == []


def test_releases_racing_expiry_at_two_locations_end_each_hold_once(
    wide_app, is_postgres, product_factory, now
):
    product = _two_places(now, product_factory, 50, 50)
    later = now + timedelta(minutes=5)
    holds = []

    for _round in range(10 if is_postgres else 3):
        north = services.reserve("TWO", 2, Owner(session_key="n"), 60, location="NORTH",
                                 now=now).id
        east = services.reserve("TWO", 3, Owner(session_key="e"), 60, location="EAST",
                                now=now).id
        holds += [north, east]

        def work(i, mine=(north, east)):
            if i < 2:
                return services.release(mine[i], actor=SYSTEM, reason="race", now=later).status
            return services.expire_due(later).holds

        *released, expired = race(wide_app, 3, work)
        assert _unexpected(released, ReservationNotActive) == []
        assert not isinstance(expired, BaseException), expired
        assert expired == sum(1 for r in released if r != "released"), (released, expired)
        db.session.commit()

    ends = Counter(r.reservation_id for r in ledger(product.id)
                   if r.kind in ("release", "expire"))
    assert ends == {hold_id: 1 for hold_id in holds}
    assert _levels(product.id) == {"MAIN": (0, 0), "NORTH": (50, 0), "EAST": (50, 0)}
    assert counters(product.id) == (100, 0)
    assert services.check() == []
