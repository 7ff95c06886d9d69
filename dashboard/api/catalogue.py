"""The storefront's catalogue sync: PUT one product, POST a batch (all or nothing), and GET
the catalogue page by page in the order it changed. Open to every active API client: the
catalogue is shop-wide; the ledger names the client as the actor of an opening receive."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import g, jsonify, request

from ..queries.catalogue import MAX_PAGE, catalogue_page, decode_position
from ..services import catalogue
from ..services.catalogue import MAX_BATCH, CatalogueProduct, CatalogueRejected, Problem
from ..services.catalogue import upsert_product, upsert_products
from ..services.transaction import unit_of_work
from . import bp
from .body import read_json
from .catalogue_schemas import BATCH_ITEM, MAX_BATCH_BYTES, PRODUCT_PUT
from .errors import ApiError, invalid, iso
from .levels import levels_of
from .schemas import FieldError, Integer

# RFC 3339 with an explicit offset: a time without one would be read in nobody's zone.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")
LIMIT = Integer(1, MAX_PAGE, "Products per page (default 100).", example=100)


def catalogue_json(product: CatalogueProduct, locations: list[dict]) -> dict:
    return {
        "sku": product.sku, "name": product.name, "price": f"{product.price:.2f}",
        "is_active": product.is_active, "barcode": product.barcode,
        "category": product.category, "supplier": product.supplier,
        "low_stock_threshold": product.low_stock_threshold, "on_hand": product.on_hand,
        "reserved": product.reserved, "available": product.available,
        "locations": locations, "updated_at": iso(product.updated_at),
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)


@bp.put("/products/<sku:sku>")
def put_product(sku: str):
    if not request.get_data(cache=True).strip():
        raise invalid({"body": "send the product's fields as a JSON object"})
    data, _ = read_json()
    values = PRODUCT_PUT.clean(data)
    # The levels are read in the write's transaction: they agree with the totals it wrote,
    # and nothing is read after its commit.
    with unit_of_work(savepoints=False):
        outcome, product = upsert_product(sku, values, actor=g.actor, now=_now())
        body = {**catalogue_json(product, levels_of([product.id])[product.id]),
                "status": outcome.status}
    return _json(body, 201 if outcome.status == "created" else 200)


@bp.post("/products/batch")
def batch_products():
    data, _ = read_json(MAX_BATCH_BYTES)
    rows = data.get("products") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows or set(data) != {"products"}:
        raise invalid({"products": f"send {{\"products\": [...]}} with 1 to {MAX_BATCH:,}"
                                   " products"})
    if len(rows) > MAX_BATCH:
        raise invalid({"products": f"send at most {MAX_BATCH:,} products at a time"})
    problems, cleaned = [], {}
    for index, row in enumerate(rows):
        try:
            cleaned[index] = BATCH_ITEM.clean(row)
        except ApiError as error:
            sku = row.get("sku") if isinstance(row, dict) else None
            sku = sku if isinstance(sku, str) else ""
            problems += [Problem(index, sku[:100], name, message)
                         for name, message in error.facts.get("fields", {}).items()]
    try:
        if problems:  # refused anyway: list what else is wrong with the other rows too
            problems += [p for index, row in cleaned.items()
                         for p in catalogue.clean(index, row)[1]]
            problems.sort(key=lambda p: p.index)
            raise CatalogueRejected(
                f"{len({p.index for p in problems})} of {len(rows)} products are wrong;"
                " nothing was changed", problems)
        outcomes = upsert_products(list(cleaned.values()), actor=g.actor, now=_now())
    except CatalogueRejected as error:
        raise ApiError(422, "invalid", error.message,
                       errors=[p.as_dict() for p in error.problems]) from None
    counts = {status: sum(1 for o in outcomes if o.status == status)
              for status in ("created", "updated", "unchanged")}
    return _json({**counts, "products": [{"sku": o.sku, "status": o.status} for o in outcomes]},
                 200)


@bp.get("/products")
def list_products():
    errors = {}
    since = _time(request.args.get("updated_since"), errors)
    after = request.args.get("after")
    position = decode_position(after) if after else None
    if after and position is None:
        errors["after"] = "is not a cursor this API gave (use `next` from a page)"
    try:
        limit = LIMIT.clean(_whole(request.args.get("limit", "100")))
    except FieldError as error:
        errors["limit"] = str(error)
    if errors:
        raise invalid(errors)
    products, next_cursor, more = catalogue_page(since, position, limit)
    levels = levels_of(p.id for p in products)
    return _json({"products": [catalogue_json(p, levels[p.id]) for p in products],
                  "next": next_cursor,
                  "has_more": more}, 200)


def _time(text: str | None, errors: dict) -> datetime | None:
    if text is None:
        return None
    if _RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            pass
    errors["updated_since"] = "must be an RFC 3339 time with a zone, like 2026-11-21T12:00:00Z"
    return None


def _whole(text: str):
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else text


def _json(body, status: int):
    response = jsonify(body)
    response.status_code = status
    return response
