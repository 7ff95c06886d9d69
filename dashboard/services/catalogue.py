"""The catalogue: products created and updated in bulk from what a shop or its storefront
sends (the API's PUT and batch, the CSV product import). Never stock: a new product may
bring an opening on-hand, written as a `receive` ledger line; after that only
receive/adjust/count/import change stock.

`plan` compares what was sent with what is stored (one read per chunk of SKUs) and says,
per product, created / updated (field: old -> new) / unchanged, or what is wrong with it;
`catalogue_writes.apply` writes a plan set-based.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ARRAY, Text, any_, cast, literal, select, text

from ..extensions import db
from ..models import Product
from . import catalogue_fields as fields
from .actor import Actor
from .catalogue_writes import READ_CHUNK, apply, chunks
from .errors import Conflict, InvalidInput, StockroomError, UnknownProduct
from .transaction import on_postgresql, transactional

MAX_BATCH = 1000
DEFAULTS = {"price": Decimal("0.00"), "is_active": True, "barcode": None, "category": None,
            "supplier": None, "low_stock_threshold": 10}
ON_HAND_REFUSED = ("on_hand can only be given for a new product; stock changes go through"
                   " receive, adjust or count")


@dataclass(frozen=True)
class Entry:
    """One product as sent: `index` is its place in the batch (or its line in a file)."""

    index: int
    sku: str
    values: dict  # cleaned, only the fields given
    on_hand: int | None = None
    location_id: int | None = None  # where a new product's opening stock lands (None: default)


@dataclass(frozen=True)
class Problem:
    index: int
    sku: str
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"index": self.index, "sku": self.sku, "field": self.field,
                "message": self.message}


@dataclass(frozen=True)
class Outcome:
    index: int
    sku: str
    status: str  # "created" | "updated" | "unchanged"
    changes: dict = field(default_factory=dict)  # field -> (old, new); created: field -> value
    on_hand: int | None = None  # opening stock of a created product
    note: str | None = None
    location_id: int | None = None  # where that opening stock is (None: the default location)


@dataclass
class Plan:
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # SKU -> id of existing products
    rows: dict[str, dict] = field(default_factory=dict)  # SKU -> final field values

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass(frozen=True)
class CatalogueProduct:
    """A product's catalogue fields and stock figures as plain values."""

    id: int
    sku: str
    name: str
    price: Decimal
    is_active: bool
    barcode: str | None
    category: str | None
    supplier: str | None
    low_stock_threshold: int
    on_hand: int
    reserved: int
    updated_at: datetime

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


CATALOGUE_COLUMNS = (Product.id, Product.sku, Product.name, Product.price, Product.is_active,
                     Product.barcode, Product.category, Product.supplier,
                     Product.low_stock_threshold, Product.on_hand, Product.reserved,
                     Product.updated_at)


def catalogue_product(row) -> CatalogueProduct:
    return CatalogueProduct(*row)


class CatalogueRejected(StockroomError):
    """Some products of a batch or file are wrong: nothing was changed. `problems` lists each."""

    code = "invalid"
    http_status = 422

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message)
        self.problems = problems


def clean(index: int, raw: dict) -> tuple[Entry | None, list[Problem]]:
    """An Entry from raw values ({'sku': ..., field: ..., 'on_hand': ...}), or its problems."""
    problems: list[Problem] = []
    sku_text = raw.get("sku")
    try:
        sku = fields.sku(sku_text)
    except fields.FieldError as error:
        label = sku_text if isinstance(sku_text, str) else ""
        return None, [Problem(index, label.strip()[:fields.MAX_SKU], "sku", str(error))]
    cleaned = {}
    for name in fields.FIELDS:
        if name in raw:
            try:
                cleaned[name] = fields.CLEANERS[name](raw[name])
            except fields.FieldError as error:
                problems.append(Problem(index, sku, name, str(error)))
    on_hand = None
    if raw.get("on_hand") is not None:
        try:
            on_hand = fields.on_hand(raw["on_hand"])
        except fields.FieldError as error:
            problems.append(Problem(index, sku, "on_hand", str(error)))
    return (None if problems else Entry(index, sku, cleaned, on_hand)), problems


def plan(entries: list[Entry], *, existing_on_hand: str = "refuse", lock: bool = False) -> Plan:
    """What applying `entries` would do. `existing_on_hand`: "refuse" an on-hand for an
    existing product (the API) or "ignore" it with a note (the CSV import)."""
    result = Plan()
    stored = _stored([e.sku for e in entries], lock)
    first: dict[str, int] = {}
    for entry in entries:
        if entry.sku in first:
            result.problems.append(Problem(entry.index, entry.sku, "sku",
                                           f"SKU {entry.sku} appears again (first at {first[entry.sku]})"))
            continue
        first[entry.sku] = entry.index
        old = stored.get(entry.sku)
        if old is None:
            _plan_create(result, entry)
        else:
            _plan_update(result, entry, old, existing_on_hand)
    _check_barcodes(result, stored)
    return result


def _plan_create(result: Plan, entry: Entry) -> None:
    if "name" not in entry.values:
        result.problems.append(Problem(entry.index, entry.sku, "name",
                                       "name is required for a new product"))
        return
    row = {**DEFAULTS, **entry.values}
    result.rows[entry.sku] = row
    result.outcomes.append(Outcome(entry.index, entry.sku, "created", dict(row),
                                   on_hand=entry.on_hand or 0, location_id=entry.location_id))


def _plan_update(result: Plan, entry: Entry, old: dict, existing_on_hand: str) -> None:
    note = None
    result.ids[entry.sku] = old["id"]
    if entry.on_hand is not None:
        if existing_on_hand == "refuse":
            result.problems.append(Problem(entry.index, entry.sku, "on_hand", ON_HAND_REFUSED))
            return
        if entry.on_hand != old["on_hand"]:
            note = (f"on hand {entry.on_hand:,} ignored (it is {old['on_hand']:,}): count stock"
                    " with the count import")
    changes = {name: (old[name], value) for name, value in entry.values.items()
               if old[name] != value}
    result.rows[entry.sku] = {**{k: old[k] for k in fields.FIELDS}, **entry.values,
                              "_old_barcode": old["barcode"]}
    status = "updated" if changes else "unchanged"
    result.outcomes.append(Outcome(entry.index, entry.sku, status, changes, note=note))


def _check_barcodes(result: Plan, stored: dict[str, dict]) -> None:
    """A barcode names one product: not two in the batch, nor one kept by another product."""
    owner_of = {row["barcode"]: sku for sku, row in _holders(result).items()}
    by_sku = {o.sku: o for o in result.outcomes}
    taken: dict[str, str] = {}
    for sku, row in list(result.rows.items()):
        code = row["barcode"]
        if code is None:
            continue
        outcome = by_sku[sku]
        holder = owner_of.get(code)
        if code in taken or (holder is not None and holder != sku and holder not in result.rows):
            other = taken.get(code) or holder
            result.problems.append(Problem(outcome.index, sku, "barcode",
                                           f"barcode {code} already belongs to {other}"))
            continue
        taken[code] = sku


def _holders(result: Plan) -> dict[str, dict]:
    """Products outside the plan holding one of the plan's barcodes, by SKU."""
    codes = sorted({r["barcode"] for r in result.rows.values() if r["barcode"]})
    found = {}
    for chunk in chunks(codes, READ_CHUNK):
        for sku, code in db.session.execute(
                select(Product.sku, Product.barcode).where(_among(Product.barcode, chunk))):
            found[sku] = {"barcode": code}
    return found


def _among(column, items: list[str]):
    """`column IN items`; on PostgreSQL one text[] parameter, not one bind per item."""
    if on_postgresql():
        return column == any_(cast(literal(items, ARRAY(Text)), ARRAY(Text)))
    return column.in_(items)


def _stored(skus: list[str], lock: bool) -> dict[str, dict]:
    """The stored catalogue fields and on-hand of these SKUs (locked in id order if asked)."""
    skus = sorted(set(skus))
    if lock and skus and on_postgresql():
        db.session.execute(text("SELECT id FROM products WHERE sku = ANY(CAST(:skus AS text[]))"
                                " ORDER BY id FOR UPDATE"), {"skus": skus})
    columns = [Product.id, Product.sku, Product.on_hand, *(getattr(Product, f) for f in fields.FIELDS)]
    found = {}
    for chunk in chunks(skus, READ_CHUNK):
        for row in db.session.execute(select(*columns).where(_among(Product.sku, chunk))):
            found[row.sku] = row._asdict()
    return found


def _refuse(problems: list[Problem], total: int) -> CatalogueRejected:
    rows = len({p.index for p in problems})
    return CatalogueRejected(
        f"{rows} of {total} products are wrong; nothing was changed", problems)


def entries_of(raw_rows: list[dict]) -> tuple[list[Entry], list[Problem]]:
    entries, problems = [], []
    for index, raw in enumerate(raw_rows):
        entry, wrong = clean(index, raw)
        problems += wrong
        if entry is not None:
            entries.append(entry)
    return entries, problems


@transactional
def upsert_products(raw_rows: list[dict], *, actor: Actor, now: datetime) -> list[Outcome]:
    """Create or update up to MAX_BATCH products, all or nothing (CatalogueRejected)."""
    if len(raw_rows) > MAX_BATCH:
        raise InvalidInput(f"send at most {MAX_BATCH:,} products at a time", field="products")
    entries, problems = entries_of(raw_rows)
    result = plan(entries, lock=True)
    problems = sorted(problems + result.problems, key=lambda p: p.index)
    if problems:
        raise _refuse(problems, len(raw_rows))
    apply(result, actor, now)
    return result.outcomes


@transactional
def upsert_product(sku: str, raw: dict, *, actor: Actor, now: datetime,
                   new: bool | None = None) -> tuple[Outcome, CatalogueProduct]:
    """Create or update one product (PUT): the fields given change, the others stay.
    `new` True refuses an existing SKU (a create form), False an unknown one (an edit).
    Returns what happened and the product as it now is."""
    entry, problems = clean(0, {**raw, "sku": sku})
    if entry is not None:
        result = plan([entry], lock=True)
        problems = result.problems
        created = entry.sku not in result.ids
        if new is True and not created:
            raise Conflict(f"a product with SKU {entry.sku} already exists")
        if new is False and created:
            raise UnknownProduct(f"no product with SKU {entry.sku}")
    if problems:
        raise InvalidInput("; ".join(p.message for p in problems),
                           fields={p.field: p.message for p in problems})
    apply(result, actor, now)
    row = db.session.execute(select(*CATALOGUE_COLUMNS).where(Product.sku == entry.sku)).one()
    return result.outcomes[0], catalogue_product(row)
