"""Locations as the Locations admin page reads them: each with its stock totals."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ..extensions import db
from ..models import Location, StockLevel


@dataclass(frozen=True)
class LocationTotals:
    location: Location
    on_hand: int
    reserved: int
    products: int  # products with at least one unit there

    @property
    def has_stock(self) -> bool:
        return self.on_hand > 0


def location_totals() -> list[LocationTotals]:
    """Every location, open and closed, in priority order, with its units on hand, held and
    products stocked: one pass over the levels, grouped by location."""
    totals = (select(StockLevel.location_id,
                     func.coalesce(func.sum(StockLevel.on_hand), 0).label("on_hand"),
                     func.coalesce(func.sum(StockLevel.reserved), 0).label("reserved"),
                     func.count().filter(StockLevel.on_hand > 0).label("products"))
              .group_by(StockLevel.location_id).subquery())
    rows = db.session.execute(
        select(Location, totals.c.on_hand, totals.c.reserved, totals.c.products)
        .outerjoin(totals, totals.c.location_id == Location.id)
        .order_by(Location.priority, Location.id))
    return [LocationTotals(location, on_hand or 0, reserved or 0, products or 0)
            for location, on_hand, reserved, products in rows]


def location_named(location_id: int) -> Location | None:
    return db.session.get(Location, location_id)
