"""The per-location stock figures a product answer carries beside its totals."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from ..extensions import db
from ..models import Location, StockLevel

# Published in the OpenAPI document (Product and CatalogueProduct `locations`).
LOCATIONS_SCHEMA = {
    "type": "array",
    "description": "the figures at each open location, in allocation priority order; the"
                   " totals are their sums",
    "items": {
        "type": "object", "additionalProperties": False,
        "required": ["location", "on_hand", "reserved", "available"],
        "properties": {
            "location": {"type": "string", "description": "the location's code"},
            "on_hand": {"type": "integer", "minimum": 0},
            "reserved": {"type": "integer", "minimum": 0},
            "available": {"type": "integer", "description": "on_hand - reserved"},
        },
    },
}


def levels_of(product_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Each product's figures at every open location, in priority order: ONE query for a
    whole page of products (never one per product)."""
    ids = sorted(set(product_ids))
    found: dict[int, list[dict]] = {pid: [] for pid in ids}
    if not ids:
        return found
    rows = db.session.execute(
        select(StockLevel.product_id, Location.code, StockLevel.on_hand, StockLevel.reserved)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.product_id.in_(ids), Location.is_active)
        .order_by(StockLevel.product_id, Location.priority, Location.id))
    for product_id, code, on_hand, reserved in rows:
        found[product_id].append({"location": code, "on_hand": on_hand, "reserved": reserved,
                                  "available": on_hand - reserved})
    return found
