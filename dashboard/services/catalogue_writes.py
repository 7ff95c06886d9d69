"""Writing a catalogue plan set-based (services.catalogue.plan says what to write).

Updates first (barcodes that move are cleared before any is set, so two products may swap
them), then inserts, then the opening stock of new products as receive ledger lines in one
statement, then one alert evaluation of every touched product. On PostgreSQL every column
travels as one array parameter (as the ledger writes): a chunk of 10,000 products is one
statement of a dozen parameters, far under the 65,535-parameter limit, with no multi-row
VALUES to compile and parse (which cost ~50x more at 100k rows). SQLite, one writer at a
time, gets executemany of one prepared statement.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Product
from . import catalogue_fields as fields
from .actor import Actor
from .alerts import evaluate_all
from .errors import Conflict
from .ledger import OPENING_STOCK, Move, record
from .locations import add_levels
from .transaction import on_postgresql

_WRITE_CHUNK = 10_000
# Rows per read: SQLite's IN lists stay under its 32,766 bind parameters.
READ_CHUNK = 5000
_table = Product.__table__


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def apply(result, actor: Actor, now: datetime) -> None:
    """Write a plan without problems (inside the caller's transaction)."""
    updated = [o.sku for o in result.outcomes if o.status == "updated"]
    created = [o for o in result.outcomes if o.status == "created"]
    try:
        _release_barcodes(result, updated)
        _update(result, updated, now)
        new_ids = _insert(result, created, now)
        # Each new product's opening stock at the location its row named (a statement per
        # location named; the default location for the rest).
        for at in sorted({o.location_id for o in created}, key=lambda at: at or 0):
            add_levels({new_ids[o.sku]: o.on_hand or 0 for o in created if o.location_id == at},
                       at=at)
    except IntegrityError:  # a concurrent change took a SKU or barcode: the caller rolls back
        raise Conflict("another change to the same products was saved at the same time;"
                       " nothing was changed, try again") from None
    record([Move(new_ids[o.sku], "receive", on_hand_delta=o.on_hand, reason=OPENING_STOCK,
                 on_hand_after=o.on_hand, reserved_after=0, location_id=o.location_id)
            for o in created if o.on_hand], actor, now)
    result.ids.update(new_ids)
    touched = sorted(new_ids.values()) + sorted(result.ids[s] for s in updated)
    if touched:
        evaluate_all(touched, now)


def _release_barcodes(result, updated: list[str]) -> None:
    """Clear barcodes that move, so two products may swap them within one change."""
    ids = [result.ids[s] for s in updated
           if result.rows[s]["_old_barcode"] and result.rows[s]["_old_barcode"] != result.rows[s]["barcode"]]
    for chunk in chunks(sorted(ids), READ_CHUNK):
        db.session.execute(update(Product).where(Product.id.in_(chunk)).values(barcode=None)
                           .execution_options(synchronize_session=False))


_ARRAYS = ("CAST(:id AS integer[]), CAST(:name AS text[]), CAST(:price AS numeric[]),"
           " CAST(:is_active AS boolean[]), CAST(:barcode AS text[]), CAST(:category AS text[]),"
           " CAST(:supplier AS text[]), CAST(:low_stock_threshold AS integer[])")
_UPDATE_MANY = text(
    "UPDATE products AS p SET name = v.name, price = v.price, is_active = v.is_active,"
    " barcode = v.barcode, category = v.category, supplier = v.supplier,"
    " low_stock_threshold = v.low_stock_threshold, updated_at = :now"
    f" FROM unnest({_ARRAYS}) AS v(id, name, price, is_active, barcode, category, supplier,"
    " low_stock_threshold) WHERE p.id = v.id"
).bindparams(bindparam("now", type_=Product.updated_at.type))
_INSERT_MANY = text(
    "INSERT INTO products (sku, name, price, is_active, barcode, category, supplier,"
    " low_stock_threshold, on_hand, reserved, alert_muted, created_at, updated_at)"
    " SELECT v.sku, v.name, v.price, v.is_active, v.barcode, v.category, v.supplier,"
    "        v.low_stock_threshold, v.on_hand, 0, false, :now, :now"
    f" FROM unnest(CAST(:sku AS text[]), {_ARRAYS.replace('CAST(:id AS integer[]), ', '')},"
    "             CAST(:on_hand AS integer[]))"
    "      WITH ORDINALITY AS v(sku, name, price, is_active, barcode, category, supplier,"
    "                           low_stock_threshold, on_hand, n)"
    " ORDER BY v.n RETURNING id, sku"
).bindparams(bindparam("now", type_=Product.updated_at.type))


def _update(result, updated: list[str], now: datetime) -> None:
    if not updated:
        return
    rows = [{"id": result.ids[s], **{f: result.rows[s][f] for f in fields.FIELDS}}
            for s in sorted(updated, key=lambda s: result.ids[s])]
    if not on_postgresql():
        # SQLite has one writer; its executemany is a C loop over one prepared statement.
        statement = update(_table).where(_table.c.id == bindparam("b_id")).values(
            updated_at=now, **{f: bindparam(f"b_{f}") for f in fields.FIELDS})
        db.session.connection().execute(
            statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        return
    for chunk in chunks(rows, _WRITE_CHUNK):
        db.session.execute(_UPDATE_MANY, {
            **{f: [row[f] for row in chunk] for f in ("id", *fields.FIELDS)}, "now": now})


def _insert(result, created: list, now: datetime) -> dict[str, int]:
    rows = [{"sku": o.sku, **{f: result.rows[o.sku][f] for f in fields.FIELDS},
             "on_hand": o.on_hand, "reserved": 0, "alert_muted": False,
             "created_at": now, "updated_at": now} for o in created]
    ids: dict[str, int] = {}
    if not rows:
        return ids
    if not on_postgresql():
        # SQLite: executemany of one prepared INSERT, then the new ids by SKU.
        db.session.connection().execute(insert(_table), rows)
        for chunk in chunks([row["sku"] for row in rows], READ_CHUNK):
            ids.update((sku, pid) for sku, pid in db.session.execute(
                select(Product.sku, Product.id).where(Product.sku.in_(chunk))))
        return ids
    for chunk in chunks(rows, _WRITE_CHUNK):
        ids.update((sku, pid) for pid, sku in db.session.execute(_INSERT_MANY, {
            **{f: [row[f] for row in chunk] for f in ("sku", *fields.FIELDS, "on_hand")},
            "now": now}))
    return ids
