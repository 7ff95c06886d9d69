"""The benches' locations: MAIN (id 1, made by migration 0009) and stores STORE-2..STORE-n,
sellable, after MAIN in priority order, inserted by id so every bench can name them."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

_STORES = sa.text(
    "INSERT INTO locations (id, code, name, kind, is_active, sellable, priority, is_default,"
    " created_at)"
    " SELECT i, 'STORE-' || i, 'Store ' || i, 'store', true, true, 10 * i, false, :created_at"
    " FROM generate_series(2, :locations) AS i")
_SEQUENCE = sa.text("SELECT setval('locations_id_seq', :locations)")


def add_stores(connection, locations: int, created_at: datetime) -> None:
    """Stores 2..`locations` on `connection` (a Connection or the app's session)."""
    params = {"locations": locations, "created_at": created_at}
    connection.execute(_STORES, params)
    connection.execute(_SEQUENCE, params)
