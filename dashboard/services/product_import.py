"""The product import: a shop's catalogue CSV checked (dry run) and then applied in one
transaction. Creates and updates products; an on-hand column opens the stock of new
products (a receive line each) and is ignored, with a note, for existing ones: stock is
counted with the count import. A location column says where a new product's opening stock
lands (the default location when absent or blank); for existing products it changes nothing."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import Location
from . import catalogue, catalogue_csv, limits
from .actor import Actor
from .errors import ImportRejected, InvalidInput
from .ledger import among
from .locations import find_location
from .transaction import transactional


@dataclass
class ProductImportReport:
    """What the file does, as plain values. Rows are spreadsheet row numbers (header = 1)."""

    digest: str  # sha256 of the file, so an apply can prove it is the file that was checked
    columns: dict[str, str]
    rows: int = 0
    creates: list[tuple[int, str, dict]] = field(default_factory=list)  # (row, sku, values)
    updates: list[tuple[int, str, dict]] = field(default_factory=list)  # (row, sku, changes)
    unchanged: int = 0
    bad_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (row, sku, message)
    notes: list[str] = field(default_factory=list)
    row_notes: list[tuple[int, str, str]] = field(default_factory=list)
    opening_units: int = 0
    # With a location column: the opening units each location receives, by code.
    opening_by_location: dict[str, int] = field(default_factory=dict)
    applied: bool = False


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _report(data: bytes, lock: bool) -> tuple[ProductImportReport, catalogue.Plan | None]:
    if not isinstance(data, bytes):
        raise InvalidInput("the file must be CSV bytes", field="file")
    parsed = catalogue_csv.parse(catalogue_csv.decode(data))
    report = ProductImportReport(digest_of(data), parsed.columns, notes=parsed.notes,
                                 bad_rows=list(parsed.bad_rows))
    report.rows = len(parsed.rows) + len(parsed.bad_rows)
    places = _places({raw.get("location", "") for _, raw in parsed.rows})
    code_of = {place.id: place.code for place in places.values()}
    entries = []
    for row, raw in parsed.rows:
        code = raw.pop("location", "")
        place = places.get(code.upper()) if code else None
        if code and (place is None or not place.is_active):
            sku = raw.get("sku", "")[:limits.MAX_SKU]
            report.bad_rows.append((row, sku, f"unknown location {code}" if place is None
                                    else f"location {place.code} is closed"))
            continue
        entry, problems = catalogue.clean(row, raw)
        report.bad_rows += [(p.index, p.sku, p.message) for p in problems]
        if entry is not None:
            entries.append(replace(entry, location_id=place.id) if place else entry)
    plan = catalogue.plan(entries, existing_on_hand="ignore", lock=lock)
    default_code = find_location(None).code if "location" in parsed.columns else ""
    report.bad_rows += [(p.index, p.sku, p.message) for p in plan.problems]
    report.bad_rows.sort()
    for outcome in plan.outcomes:
        if outcome.status == "created":
            report.creates.append((outcome.index, outcome.sku, outcome.changes))
            report.opening_units += outcome.on_hand or 0
            if "location" in parsed.columns and outcome.on_hand:
                at = code_of.get(outcome.location_id) or default_code
                report.opening_by_location[at] = (report.opening_by_location.get(at, 0)
                                                  + outcome.on_hand)
        elif outcome.status == "updated":
            report.updates.append((outcome.index, outcome.sku, outcome.changes))
        else:
            report.unchanged += 1
        if outcome.note:
            report.row_notes.append((outcome.index, outcome.sku, outcome.note))
    return report, plan


def _places(codes: set[str]) -> dict[str, Location]:
    """The locations a file's location cells name, by code (one statement)."""
    wanted = sorted({c.upper() for c in codes if c and not limits.unsayable(c)})
    if not wanted:
        return {}
    return {place.code: place for place in
            db.session.scalars(select(Location).where(among(Location.code, wanted)))}


def check_products(data: bytes) -> ProductImportReport:
    """The dry run: what would be created, updated (field: old -> new), and what is wrong."""
    return _report(data, lock=False)[0]


@transactional
def import_products(data: bytes, *, actor: Actor, now: datetime,
                    expected_digest: str | None = None) -> ProductImportReport:
    """Apply the file in one transaction; any bad row refuses all (ImportRejected)."""
    if expected_digest is not None and digest_of(data) != expected_digest:
        raise InvalidInput("this is not the file that was checked; check it again",
                           field="file")
    report, plan = _report(data, lock=True)
    if report.bad_rows:
        raise ImportRejected(
            f"{len(report.bad_rows):,} of {report.rows:,} rows are wrong; nothing was changed",
            report)
    catalogue.apply(plan, actor, now)
    report.applied = True
    return report
