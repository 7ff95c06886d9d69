"""Locations: the warehouses and stores that keep stock, and which of them a hold takes.

Every product has a stock level at every location (a row, zero when nothing is there):
creating a product or a location creates the missing rows, so a location's stock list is a
plain join and no change ever has to ask whether the row exists.

Exactly one location is the default: counts, adjustments and imports that name no location
happen there, as everything did before locations existed (migration 0009 made it MAIN).
"""
from __future__ import annotations

import re
from datetime import datetime

from flask import current_app
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import LOCATION_KINDS, Location
from . import limits
from .actor import Actor
from .errors import Conflict, InvalidInput, NotFound
from .transaction import on_postgresql, transactional

# A level's columns as inserted; its copy of the product's threshold and is_active comes from
# the product's row (the foreign key refuses any other value; models.StockLevel).
LEVEL_COLUMNS = ("product_id, location_id, on_hand, reserved, product_threshold,"
                 " product_is_active")
CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")


class UnknownLocation(NotFound):
    code = "unknown_location"


def allocation() -> str:
    return current_app.config.get("HOLD_ALLOCATION", "priority")


def default_location() -> Location:
    found = db.session.scalars(select(Location).where(Location.is_default)).first()
    if found is None:  # migration 0009 makes one and nothing can unset it without another
        raise NotFound("no default location is set")
    return found


def all_locations(active_only: bool = False) -> list[Location]:
    query = select(Location).order_by(Location.priority, Location.id)
    if active_only:
        query = query.where(Location.is_active)
    return list(db.session.scalars(query))


def find_location(location: Location | str | int | None) -> Location:
    """A location by object, code (any case) or id; None is the default location."""
    if location is None:
        return default_location()
    if isinstance(location, Location):
        return location
    if isinstance(location, str):
        code = code_or_none(location)
        found = None if code is None else db.session.scalars(
            select(Location).where(Location.code == code)).first()
        label = f"code {location.strip()[:limits.MAX_SKU]!r}"
    elif isinstance(location, int) and not isinstance(location, bool):
        found = db.session.get(Location, location) if 0 < location <= limits.MAX_ID else None
        label = f"id {location}"
    else:
        raise InvalidInput("location must be a location code", field="location")
    if found is None:
        raise UnknownLocation(f"no location with {label}")
    return found


def code_or_none(text_: object) -> str | None:
    """`text_` as a location code is stored (upper case), or None if it cannot be one."""
    code = text_.strip().upper() if isinstance(text_, str) else ""
    return code if CODE.fullmatch(code) else None


def location_code(text_: object) -> str:
    code = code_or_none(text_)
    if code is None:
        raise InvalidInput("a location code is 1-20 letters, digits, '-' or '_'", field="code")
    return code


def _name(value: object) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > 100:
        raise InvalidInput("a location needs a name of at most 100 characters", field="name")
    return name


def _kind(value: object) -> str:
    if value not in LOCATION_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(LOCATION_KINDS)}", field="kind")
    return value


def _priority(value: object) -> int:
    return limits.require_whole_number(value, "priority", 0, 10_000)


@transactional
def create_location(code: str, name: str, *, kind: str = "warehouse", sellable: bool = True,
                    priority: int = 100, actor: Actor, now: datetime) -> Location:
    """A new location, with an empty stock level for every product."""
    location = Location(code=location_code(code), name=_name(name), kind=_kind(kind),
                        sellable=bool(sellable), priority=_priority(priority), is_active=True,
                        is_default=False, created_at=now)
    db.session.add(location)
    try:
        db.session.flush()
    except IntegrityError:  # @transactional rolls back
        raise Conflict(f"a location with code {location.code} already exists")
    db.session.execute(text(
        f"INSERT INTO stock_levels ({LEVEL_COLUMNS})"
        " SELECT id, :location, 0, 0, low_stock_threshold, is_active FROM products"),
        {"location": location.id})
    return location


@transactional
def update_location(location: Location | str | int, *, name: str | None = None,
                    kind: str | None = None, sellable: bool | None = None,
                    priority: int | None = None, is_active: bool | None = None,
                    make_default: bool = False, actor: Actor, now: datetime) -> Location:
    """Rename, reorder, stop or start selling from, close or reopen, or make the default.

    A location with stock or holds may stop selling (new holds go elsewhere; its holds run
    their course) but cannot be closed: move or count its stock out first."""
    found = find_location(location)
    db.session.execute(select(Location.id).where(Location.id == found.id).with_for_update())
    if name is not None:
        found.name = _name(name)
    if kind is not None:
        found.kind = _kind(kind)
    if sellable is not None:
        found.sellable = bool(sellable)
    if priority is not None:
        found.priority = _priority(priority)
    if is_active is not None and not is_active:
        if found.is_default or make_default:
            raise Conflict(f"{found.code} is the default location; make another the default"
                           " before closing it")
        units = db.session.execute(text(
            "SELECT coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0) FROM stock_levels"
            " WHERE location_id = :id"), {"id": found.id}).one()
        incoming = db.session.execute(text(
            "SELECT count(*) FROM transfers WHERE status IN ('draft', 'shipped')"
            " AND (source_id = :id OR destination_id = :id)"), {"id": found.id}).scalar_one()
        if units[0] or incoming:
            raise Conflict(
                f"{found.code} still has {units[0]:,} units on hand ({units[1]:,} held) and"
                f" {incoming} open transfers; move or count them out before closing it")
    if is_active is not None:
        found.is_active = bool(is_active)
    if make_default:
        if not found.is_active:
            raise Conflict(f"{found.code} is closed and cannot be the default location")
        db.session.execute(update(Location).where(Location.is_default, Location.id != found.id)
                           .values(is_default=False))
        db.session.flush()
        found.is_default = True
    db.session.flush()
    return found


def add_levels(opening: dict[int, int], at: int | None = None) -> None:
    """Stock levels at every location for new products (in their transaction): `opening`
    maps each product id to the on-hand its row was created with, which is at location id
    `at` (the default location when None); every other level is empty."""
    if not opening:
        return
    ids = sorted(opening)
    on_hand = [opening[i] for i in ids]
    where = "l.id = CAST(:at AS integer)" if at is not None else "l.is_default"
    if on_postgresql():
        db.session.execute(text(
            f"INSERT INTO stock_levels ({LEVEL_COLUMNS})"
            f" SELECT v.id, l.id, CASE WHEN {where} THEN v.on_hand ELSE 0 END, 0,"
            " p.low_stock_threshold, p.is_active"
            " FROM unnest(CAST(:ids AS integer[]), CAST(:on_hand AS integer[])) AS v(id, on_hand)"
            " JOIN products AS p ON p.id = v.id, locations AS l"),
            {"ids": ids, "on_hand": on_hand, "at": at})
        return
    statement = text(
        f"INSERT INTO stock_levels ({LEVEL_COLUMNS})"
        f" SELECT :id, l.id, CASE WHEN {where} THEN :on_hand ELSE 0 END, 0,"
        " p.low_stock_threshold, p.is_active FROM locations AS l, products AS p WHERE p.id = :id")
    db.session.connection().execute(
        statement, [{"id": i, "on_hand": n, "at": at} for i, n in zip(ids, on_hand)])
