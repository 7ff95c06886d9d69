"""Stock corrections by staff: adjust, count and CSV import of counts."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import String, func, select, update

from ..extensions import db
from ..models import Location, Product, StockLevel
from . import limits
from .actor import Actor
from .alerts import evaluate_all
from .errors import BelowHeld, ImportRejected, InvalidInput, StaleCount
from .ledger import Move, among, apply_deltas, lock_products, record
from .locations import find_location
from .products import find_product, fresh_product
from .transaction import transactional
from .wording import plural


def _held_refusal(level: StockLevel | Product, wanted_on_hand: int, sku: str,
                  where: str = "") -> BelowHeld:
    if wanted_on_hand < 0:
        return BelowHeld(
            f"on hand cannot go below 0 ({sku} has {level.on_hand}{where})",
            held=level.reserved,
        )
    there = " there" if where else ""
    return BelowHeld(
        f"{level.reserved} units are held{where}; on hand{there} cannot go below"
        f" {level.reserved}",
        held=level.reserved,
    )


def _at(place: Location) -> str:
    """' at CODE' where the shop has more than one location (else the place goes unsaid)."""
    several = db.session.execute(
        select(func.count()).select_from(Location).where(Location.is_active)).scalar_one() > 1
    return f" at {place.code}" if several else ""


def _locked_level(product: Product | str | int, location) -> tuple[Product, Location, StockLevel]:
    """The product (locked: its lock guards its levels), the location, and the level there,
    fresh. A closed location takes no stock."""
    found = find_product(product)
    place = find_location(location)
    if not place.is_active:
        raise InvalidInput(f"location {place.code} is closed", field="location")
    lock_products([found.id])
    level = db.session.scalars(
        select(StockLevel).where(StockLevel.product_id == found.id,
                                 StockLevel.location_id == place.id)
        .execution_options(populate_existing=True)).one()
    return found, place, level


@transactional
def adjust(
    product: Product | str | int, delta: int, *, reason: str, actor: Actor, now: datetime,
    kind: str = "adjust", location: Location | str | int | None = None,
) -> Product:
    """Add or remove units at a location (the default one if none is named): a delivery,
    damage, a found box; never below the units held there."""
    delta = limits.require_whole_number(delta, "delta", -limits.MAX_ADJUST, limits.MAX_ADJUST)
    if delta == 0:
        raise InvalidInput("delta must not be 0", field="delta")
    if kind not in ("adjust", "receive") or (kind == "receive" and delta < 0):
        raise InvalidInput("a receipt adds units; use an adjustment to remove them", field="kind")
    reason = limits.reason_text(reason)
    found, place, level = _locked_level(product, location)
    total = fresh_product(found.id)
    if total.on_hand + delta > limits.MAX_STOCK:
        raise InvalidInput(f"on hand would exceed {limits.MAX_STOCK:,}", field="delta")
    if level.on_hand + delta < level.reserved:
        raise _held_refusal(level, level.on_hand + delta, found.sku, _at(place))
    apply_deltas([Move(found.id, kind, on_hand_delta=delta, reason=reason,
                       location_id=place.id)], actor, now)
    evaluate_all([found.id], now)
    return fresh_product(found.id)


@transactional
def count(
    product: Product | str | int, counted: int, expected: int, *, actor: Actor, now: datetime,
    note: str | None = None, location: Location | str | int | None = None,
) -> Product:
    """Set a location's on-hand to a physical count, if it is still what the counter saw
    (`expected`, the on-hand at that location)."""
    counted = limits.require_whole_number(counted, "counted", 0, limits.MAX_STOCK)
    expected = limits.require_whole_number(expected, "expected", 0, limits.MAX_STOCK)
    note = limits.reason_text(note, "note", required=False)
    found, place, level = _locked_level(product, location)
    if level.on_hand != expected:
        raise StaleCount(
            f"stock changed since you loaded this page: on hand{_at(place)} is now"
            f" {level.on_hand}, not {expected}",
            current_on_hand=level.on_hand,
        )
    if counted < level.reserved:
        raise _held_refusal(level, counted, found.sku, _at(place))
    if fresh_product(found.id).on_hand + counted - expected > limits.MAX_STOCK:
        raise InvalidInput(f"on hand would exceed {limits.MAX_STOCK:,}", field="counted")
    # A count that confirms the figure is a ledger line too (who counted, when).
    apply_deltas([Move(found.id, "count", on_hand_delta=counted - expected,
                       reason=note or f"counted {counted}", location_id=place.id)], actor, now)
    level.last_stock_check = now
    db.session.execute(update(Product).where(Product.id == found.id)
                       .values(last_stock_check=now, updated_at=now)
                       .execution_options(synchronize_session=False))
    db.session.flush()
    evaluate_all([found.id], now)
    return fresh_product(found.id)


@dataclass
class ImportRow:
    line: int
    sku: str
    value: str
    error: str | None = None
    product_id: int | None = None
    on_hand_before: int | None = None  # at the row's location
    on_hand_after: int | None = None
    seen_on_hand: int | None = None  # what the dry run showed, when it differs from now
    location: str = ""  # the code the row names; "" = the default location
    location_id: int | None = None

    @property
    def delta(self) -> int:
        return (self.on_hand_after or 0) - (self.on_hand_before or 0)

    @property
    def stale(self) -> bool:
        return self.seen_on_hand is not None


@dataclass
class ImportReport:
    mode: str  # "on_hand" (absolute counts) or "delta"
    rows: list[ImportRow] = field(default_factory=list)
    applied: bool = False
    by_location: bool = False  # the file has a location column

    @property
    def errors(self) -> list[ImportRow]:
        return [r for r in self.rows if r.error]

    @property
    def changes(self) -> list[ImportRow]:
        return [r for r in self.rows if not r.error and r.delta != 0]

    @property
    def stale(self) -> list[ImportRow]:
        return [r for r in self.rows if not r.error and r.stale]

    @property
    def on_hand_seen(self) -> list[int | None]:
        """Each row's on-hand (at its location) as this report shows it: the apply step
        checks it again."""
        return [r.on_hand_before for r in self.rows]


COUNT_HEADERS = ("sku,on_hand", "sku,delta", "sku,on_hand,location", "sku,delta,location")


def parse_counts_csv(text: str) -> tuple[str, bool, list[tuple[int, str, str, str]]]:
    """Rows of a `sku,on_hand` or `sku,delta` CSV, with an optional `location` column (in
    any place), as (line, sku, value, location code or "")."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        names = set(header)
        mode = "on_hand" if "on_hand" in names else "delta"
        if (len(names) != len(header) or not {"sku", mode} <= names
                or not names <= {"sku", mode, "location"}):
            raise InvalidInput("the header must be 'sku,on_hand' or 'sku,delta', with an"
                               " optional 'location' column", field="file")
        sku_at, value_at = header.index("sku"), header.index(mode)
        location_at = header.index("location") if "location" in names else None
        for line, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            cells = cells + [""] * len(header)
            rows.append((line, cells[sku_at].strip(), cells[value_at].strip(),
                         cells[location_at].strip() if location_at is not None else ""))
    except csv.Error as error:  # a field over the csv module's limit, a stray quote, ...
        raise InvalidInput(f"line {reader.line_num} is not valid CSV ({error}); check that"
                           " line's quotes", field="file") from None
    if not rows:
        raise InvalidInput("the file has no rows", field="file")
    return mode, location_at is not None, rows


def _places(codes: set[str]) -> tuple[Location, dict[str, Location]]:
    """The default location and the locations these codes name, by upper-case code."""
    wanted = [c.upper() for c in codes if c and not limits.unsayable(c)]
    found = db.session.scalars(select(Location).where(among(Location.code, wanted))) if wanted else []
    return find_location(None), {place.code: place for place in found}


def _levels(product_ids: list[int], location_ids: list[int]) -> dict[tuple[int, int], StockLevel]:
    """The levels of these products at these locations, by (product id, location id), fresh
    (read after the products' locks when applying: their lock guards their levels)."""
    if not product_ids or not location_ids:
        return {}
    found = db.session.scalars(
        select(StockLevel).where(among(StockLevel.product_id, product_ids),
                                 among(StockLevel.location_id, location_ids))
        .execution_options(populate_existing=True))
    return {(level.product_id, level.location_id): level for level in found}


def _plan(mode: str, rows: list[tuple[int, str, str, str]], products: dict[str, Product],
          by_location: bool) -> ImportReport:
    report = ImportReport(mode, by_location=by_location)
    default, places = _places({code for *_, code in rows})
    levels = _levels(sorted({p.id for p in products.values()}),
                     sorted({default.id, *(place.id for place in places.values())}))
    seen: dict[tuple[str, int | str], int] = {}
    totals: dict[int, int] = {}  # each product's total on-hand after the rows so far
    for line, sku, value, code in rows:
        row = ImportRow(line, sku, value, location=code)
        report.rows.append(row)
        # A SKU is found in any case ("sta-103-blue" is STA-103-BLUE), the exact one first.
        product = products.get(sku) or products.get(sku.lower())
        place = places.get(code.upper()) if code else default
        key = (product.sku if product is not None else sku.lower(),
               place.id if place is not None else code.upper())
        where = f" at {place.code}" if by_location and place is not None else ""
        if not sku:
            row.error = "SKU is empty"
        elif key in seen:
            row.error = f"SKU {sku}{where} appears again (first on line {seen[key]})"
        elif product is None:
            row.error = f"unknown SKU {sku}"
        elif place is None:
            row.error = f"unknown location {code}"
        elif not place.is_active:
            row.error = f"location {place.code} is closed"
        if sku and key not in seen:
            seen[key] = line
        if row.error:
            continue
        try:
            number = limits.require_whole_number(
                value, mode, 0 if mode == "on_hand" else -limits.MAX_ADJUST,
                limits.MAX_STOCK if mode == "on_hand" else limits.MAX_ADJUST,
            )
        except InvalidInput as error:
            row.error = f"{error.message} (got {value!r})"
            continue
        level = levels[(product.id, place.id)]
        row.product_id, row.location_id = product.id, place.id
        row.on_hand_before = level.on_hand
        row.on_hand_after = number if mode == "on_hand" else level.on_hand + number
        total = totals.get(product.id, product.on_hand) + row.delta
        if row.on_hand_after < level.reserved:
            row.error = str(_held_refusal(level, row.on_hand_after, product.sku, where))
        elif total > limits.MAX_STOCK:
            row.error = f"on hand would exceed {limits.MAX_STOCK:,}"
        else:
            totals[product.id] = total
    return report


def _mark_stale(report: ImportReport, on_hand_seen: list[int | None]) -> None:
    if len(on_hand_seen) != len(report.rows):
        raise InvalidInput("the checked file and its figures do not match; check the file again",
                           field="file")
    for row, seen in zip(report.rows, on_hand_seen):
        if not row.error and seen != row.on_hand_before:
            row.seen_on_hand = seen


def _products_by_sku(skus: list[str], lock: bool) -> dict[str, Product]:
    """The products these SKUs name in any case (ix_products_sku_lower), by SKU and by its
    lower case (the latter only where one product has it)."""
    lowered = func.lower(Product.sku, type_=String)
    found = db.session.scalars(
        select(Product).where(among(lowered, [s.lower() for s in skus if s and not limits.unsayable(s)]))
        .execution_options(populate_existing=True)
    ).all()
    if lock:
        locked = lock_products([p.id for p in found])
        found = list(locked.values())
    by_lower: dict[str, list[Product]] = {}
    for product in found:
        by_lower.setdefault(product.sku.lower(), []).append(product)
    return {**{low: same[0] for low, same in by_lower.items() if len(same) == 1},
            **{p.sku: p for p in found}}


@transactional
def import_counts(text: str, *, actor: Actor, now: datetime, apply: bool = False,
                  on_hand_seen: list[int | None] | None = None) -> ImportReport:
    """Dry run (default) reports every row; with apply, all rows change in one transaction.

    A row is at the location its `location` column names (the default location when the
    file has no such column or the cell is blank); a SKU may appear once per location.
    Any bad row refuses the whole apply (ImportRejected carries the report). `on_hand_seen`
    is the dry run's `report.on_hand_seen`: like a single count, apply refuses if any row's
    on-hand at its location has moved since (the report marks those rows, so applying
    again confirms them).
    """
    if not isinstance(text, str):
        raise InvalidInput("the file must be CSV text", field="file")
    mode, by_location, rows = parse_counts_csv(text)
    products = _products_by_sku([sku for _, sku, _, _ in rows], lock=apply)
    report = _plan(mode, rows, products, by_location)
    if on_hand_seen is not None:
        _mark_stale(report, on_hand_seen)
    if not apply:
        return report
    if report.errors:
        raise ImportRejected(
            f"{len(report.errors)} of {len(report.rows)} rows are wrong; nothing was changed",
            report,
        )
    if report.stale:
        raise ImportRejected(
            f"Stock changed since you checked the file: on hand moved for "
            f"{plural(len(report.stale), 'row')} (marked below); nothing was changed. Check the "
            f"new figures and apply again to set them.",
            report,
        )
    kind_reason = f"import ({'absolute counts' if mode == 'on_hand' else 'deltas'})"
    moves = [
        Move(r.product_id, "import", on_hand_delta=r.delta, reason=f"{kind_reason}, line {r.line}",
             location_id=r.location_id)
        for r in sorted(report.changes, key=lambda r: (r.product_id, r.location_id))
    ]
    apply_deltas(moves, actor, now)
    touched = sorted({r.product_id for r in report.rows})
    if mode == "on_hand":
        db.session.execute(
            update(Product).where(among(Product.id, touched)).values(last_stock_check=now)
            .execution_options(synchronize_session=False)
        )
        # Each counted level too: a location's last count is its own.
        for location_id in sorted({r.location_id for r in report.rows}):
            db.session.execute(
                update(StockLevel).where(
                    StockLevel.location_id == location_id,
                    among(StockLevel.product_id,
                          sorted(r.product_id for r in report.rows if r.location_id == location_id)))
                .values(last_stock_check=now).execution_options(synchronize_session=False))
    evaluate_all(touched, now)
    report.applied = True
    return report
