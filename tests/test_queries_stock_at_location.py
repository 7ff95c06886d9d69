"""queries.stock at one location: every filter, sort and direction, with and without a
search, paged by its cursors, gives the rows and tab counts a plain reading of the levels
gives. The search path pages the matches by themselves, joins the location's low and out
levels for those tabs and all its levels only to sort by them (issue 12), so each branch is
compared here with the same model."""
from __future__ import annotations

import itertools

import pytest

from dashboard import services
from dashboard.queries import stock
from dashboard.queries.stock import StockQuery, stock_page
from dashboard.services import SYSTEM
from dashboard.services.locations import create_location, find_location

# (sku, name, threshold, units received at STORE-1, active): low, out, fine and inactive,
# at the store, for products named "navy" and not.
PRODUCTS = [
    ("NAV-01", "Navy tee", 3, 0, True), ("NAV-02", "Navy mug", 3, 2, True),
    ("NAV-03", "Navy sock", 1, 9, True), ("NAV-04", "Navy cap", 5, 5, True),
    ("NAV-05", "Navy hat", 2, 0, False), ("NAV-06", "Navy bag", 4, 7, True),
    ("NAV-07", "Navy pen", 0, 0, True), ("RED-01", "Red tee", 3, 1, True),
    ("RED-02", "Red mug", 3, 0, True), ("RED-03", "Red cap", 2, 8, False),
]


def expected(query: StockQuery, held: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    rows = []
    for sku, name, threshold, at_store, active in PRODUCTS:
        if query.q and query.q.lower() not in f"{sku} {name}".lower():
            continue
        available = at_store - held.get(sku, 0)
        rows.append({"sku": sku, "name": name, "threshold": threshold, "active": active,
                     "on_hand": at_store, "reserved": held.get(sku, 0),
                     "available": available,
                     "low": active and 0 < available <= threshold,
                     "out": active and available <= 0})
    counts = {"all": len(rows), "low": sum(r["low"] for r in rows),
              "out": sum(r["out"] for r in rows),
              "inactive": sum(not r["active"] for r in rows)}
    if query.filter != "all":
        rows = [r for r in rows if (not r["active"] if query.filter == "inactive"
                                    else r[query.filter])]
    key = "threshold" if query.sort == "threshold" else query.sort
    rows.sort(key=lambda r: (r[key], r["sku"]), reverse=query.dir == "desc")
    return [r["sku"] for r in rows], counts


def every_page(query: StockQuery, location) -> tuple[list[str], dict[str, int]]:
    skus, page, counts = [], stock_page(query, None, location=location), None
    for _ in range(20):
        skus += [row.sku for row in page.products]
        counts = counts or page.counts
        assert page.counts == counts  # the same on every page
        if page.next_cursor is None:
            return skus, counts
        page = stock_page(query, page.next_cursor, location=location)
    raise AssertionError("more pages than products")


@pytest.fixture
def store(product_factory, now, monkeypatch):
    monkeypatch.setattr(stock, "PAGE_SIZE", 3)  # several pages of ten products
    create_location("STORE-1", "High Street", kind="store", actor=SYSTEM, now=now)
    for sku, name, threshold, at_store, active in PRODUCTS:
        product = product_factory(sku, on_hand=20, threshold=threshold, name=name)
        if at_store:
            services.adjust(product.id, at_store, reason="delivery", location="STORE-1",
                            actor=SYSTEM, now=now)
        if not active:
            services.update_product(product.id, is_active=False, actor=SYSTEM, now=now)
    services.reserve("NAV-04", 2, services.Owner(session_key="s"), location="STORE-1", now=now)
    return find_location("STORE-1")


HELD = {"NAV-04": 2}  # NAV-04: 5 at the store, 2 held, 3 available: low at threshold 5


@pytest.mark.parametrize("q", ["", "navy"])
def test_every_filter_and_sort_at_a_location_matches_the_levels(store, q):
    for filter_, sort, direction in itertools.product(
            stock.FILTERS, ["sku", "name", "threshold", "on_hand", "reserved", "available"],
            ["asc", "desc"]):
        query = StockQuery(q=q, filter=filter_, sort=sort, dir=direction, location="STORE-1")
        want_skus, want_counts = expected(query, HELD)
        got_skus, got_counts = every_page(query, store)
        assert got_counts == want_counts, (filter_, sort, direction)
        # Ties are ordered by id, which follows the SKUs here, as in the model.
        assert got_skus == want_skus, (filter_, sort, direction)


def test_a_search_with_an_empty_tab_still_counts_the_others(store):
    # "cap": NAV-04 is low at the store (3 available after the hold), RED-03 is inactive.
    page = stock_page(StockQuery(q="cap", filter="out", location="STORE-1"), None,
                      location=store)
    assert page.products == []
    assert page.counts == {"all": 2, "low": 1, "out": 0, "inactive": 1}
