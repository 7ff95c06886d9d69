"""Transfers: stock moving from one location to another, in steps staff take.

draft -> shipped -> received, or draft -> cancelled. Each step is one transaction that
locks the transfer's row first (then its products, then their levels: the ledger's order),
so two staff pressing the same button get one success and one refusal saying what
happened, never a double move.

Where the units are (the decisions the issue leaves open):
- Shipping takes each line's units off the source's on-hand (a `transfer_out` ledger line
  there) and off the product's totals. Units in transit are in no stock level and in no
  total: the transfer's lines carry them (`TransferLine.in_transit`), so nothing can hold
  or sell them, and the ledger per level still sums to its counters (I3).
- Receiving adds units to the destination (`transfer_in` there), in as many receipts as
  it takes; the transfer is `received` once every line is received or written off.
- A write-off is a `write_off` ledger line at the DESTINATION (the place that expected the
  units) with no on-hand change, naming the units and the reason: the units already left
  the counters when they were shipped, and the line says where they went.
- A product may appear once per transfer: lines naming it again are merged (their
  quantities added), as a person listing the same SKU twice means both.
- A draft is not checked against the source's stock: shipping is, and refuses the whole
  transfer (nothing changed) naming every short SKU with what was wanted and available.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import Location, Product, StockLevel, Transfer, TransferLine
from . import limits
from .actor import Actor
from .alerts import evaluate_all
from .errors import (
    InsufficientStock, InvalidInput, MoreThanInTransit, NotFound, TransferWrongState,
    UnknownProduct,
)
from .ledger import Move, among, apply_deltas, lock_products
from .locations import find_location
from .products import find_product
from .transaction import transactional
from .wording import plural

MAX_LINES = 500


def _place(location, role: str) -> Location:
    found = find_location(location)
    if not found.is_active:
        raise InvalidInput(f"location {found.code} is closed", field=role)
    return found


def _lines(lines) -> dict[int, tuple[Product, int]]:
    """{product id: (product, quantity)} of (product, quantity) pairs, merged per product."""
    if isinstance(lines, (str, bytes)) or not hasattr(lines, "__iter__"):
        raise InvalidInput("lines must be a list of (SKU, quantity)", field="lines")
    lines = list(lines)
    if not lines:
        raise InvalidInput("a transfer needs at least one line", field="lines")
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"a transfer has at most {MAX_LINES} lines; split it",
                           field="lines")
    merged: dict[int, tuple[Product, int]] = {}
    for number, line in enumerate(lines, start=1):
        try:
            product, quantity = line
        except (TypeError, ValueError):
            raise InvalidInput(f"line {number} must be a SKU and a quantity",
                               field="lines", line=number) from None
        # The refusal names its line: a person fixes row 7 of 40, not "the quantity".
        try:
            found = find_product(product)
        except UnknownProduct as error:
            raise UnknownProduct(f"line {number}: {error.message}", line=number) from None
        except InvalidInput as error:
            raise InvalidInput(f"line {number}: {error.message}", field="lines",
                               line=number) from None
        try:
            quantity = limits.require_whole_number(quantity, "quantity", 1, limits.MAX_ADJUST)
        except InvalidInput as error:
            raise InvalidInput(f"line {number}: {error.message}", field="lines",
                               line=number) from None
        before = merged.get(found.id, (found, 0))[1]
        if before + quantity > limits.MAX_ADJUST:
            raise InvalidInput(f"line {number}: {found.sku} would add up to more than"
                               f" {limits.MAX_ADJUST:,} units", field="lines", line=number)
        merged[found.id] = (found, before + quantity)
    return merged


@transactional
def create_transfer(source, destination, lines, note: str | None = None, *, actor: Actor,
                    now: datetime) -> Transfer:
    """A draft transfer of `lines` ((SKU, id or product, quantity) pairs) from `source` to
    `destination` (location codes, ids or objects). Changes no stock."""
    source, destination = _place(source, "source"), _place(destination, "destination")
    if source.id == destination.id:
        raise InvalidInput("the source and the destination must be different locations",
                           field="destination")
    note = limits.reason_text(note, "note", required=False)
    merged = _lines(lines)
    transfer = Transfer(source_id=source.id, destination_id=destination.id, status="draft",
                        note=note, created_at=now, updated_at=now,
                        created_by_staff_id=actor.staff_id)
    db.session.add(transfer)
    db.session.flush()
    db.session.add_all(TransferLine(transfer_id=transfer.id, product_id=pid, quantity=q)
                       for pid, (_, q) in sorted(merged.items()))
    db.session.flush()
    return transfer


def _locked(transfer_id: int) -> Transfer:
    """The transfer, its row locked (so a second step waits, then sees the first's status)."""
    if isinstance(transfer_id, bool) or not isinstance(transfer_id, int) \
            or not 0 < transfer_id <= limits.MAX_ID:
        raise NotFound(f"no transfer with id {transfer_id!r}")
    found = db.session.scalars(
        select(Transfer).where(Transfer.id == transfer_id).with_for_update()
        .execution_options(populate_existing=True)).first()
    if found is None:
        raise NotFound(f"no transfer with id {transfer_id}")
    db.session.scalars(select(TransferLine).where(TransferLine.transfer_id == found.id)
                       .execution_options(populate_existing=True)).all()
    return found


def _require(transfer: Transfer, status: str, doing: str) -> None:
    if transfer.status != status:
        said = {"draft": "is still a draft", "shipped": "is already shipped",
                "received": "is already received", "cancelled": "was cancelled"}
        raise TransferWrongState(
            f"{transfer.code} {said[transfer.status]}, so it cannot be {doing};"
            " nothing was changed", status=transfer.status)


def _skus(product_ids) -> dict[int, str]:
    return dict(db.session.execute(
        select(Product.id, Product.sku).where(among(Product.id, sorted(product_ids)))).all())


@transactional
def ship(transfer_id: int, *, actor: Actor, now: datetime) -> Transfer:
    """Send a draft: every line's units leave the source's on-hand, or nothing does."""
    transfer = _locked(transfer_id)
    _require(transfer, "draft", "shipped")
    ids = [line.product_id for line in transfer.lines]
    lock_products(ids)
    levels = {level.product_id: level for level in db.session.scalars(
        select(StockLevel).where(among(StockLevel.product_id, ids),
                                 StockLevel.location_id == transfer.source_id)
        .execution_options(populate_existing=True))}
    skus = _skus(ids)
    short = [{"sku": skus[line.product_id], "wanted": line.quantity,
              "available": levels[line.product_id].available}
             for line in transfer.lines if line.quantity > levels[line.product_id].available]
    if short:
        code = transfer.source.code
        said = "; ".join(f"{s['sku']} needs {s['wanted']:,}, {s['available']:,} available"
                         for s in short)
        raise InsufficientStock(
            f"{transfer.code} was not shipped: {said} at {code} (held units stay for their"
            " holds); nothing was changed", location=code, short=short)
    reason = f"{transfer.code} to {transfer.destination.code}"
    apply_deltas([Move(line.product_id, "transfer_out", on_hand_delta=-line.quantity,
                       location_id=transfer.source_id, transfer_id=transfer.id, reason=reason)
                  for line in transfer.lines], actor, now)
    transfer.status, transfer.shipped_at, transfer.updated_at = "shipped", now, now
    db.session.flush()
    evaluate_all(ids, now)
    return transfer


def _settle(transfer: Transfer, quantities, what: str, done: str) -> dict[int, int]:
    """{product id: units} for a receipt or write-off of `quantities` ({SKU, id or product:
    units}; None = everything in transit), each within its line's units in transit."""
    lines = {line.product_id: line for line in transfer.lines}
    if quantities is None:
        return {pid: line.in_transit for pid, line in lines.items() if line.in_transit}
    if not isinstance(quantities, dict):
        raise InvalidInput(f"say how many units of each SKU to {what}", field="quantities")
    asked: dict[int, int] = {}
    for key, value in quantities.items():
        product = find_product(key)
        if product.id not in lines:
            raise InvalidInput(f"{product.sku} is not on {transfer.code}", field="quantities")
        units = limits.require_whole_number(value, "quantity", 0, limits.MAX_ADJUST)
        asked[product.id] = asked.get(product.id, 0) + units
    too_many = [(pid, units) for pid, units in sorted(asked.items())
                if units > lines[pid].in_transit]
    if too_many:
        skus = _skus(pid for pid, _ in too_many)
        said = "; ".join(f"{skus[pid]} has {lines[pid].in_transit:,} in transit, not {units:,}"
                         for pid, units in too_many)
        raise MoreThanInTransit(
            f"nothing was {done} on {transfer.code}: {said}",
            lines=[{"sku": skus[pid], "in_transit": lines[pid].in_transit, "asked": units}
                   for pid, units in too_many])
    asked = {pid: units for pid, units in asked.items() if units}
    if not asked:
        raise InvalidInput(f"enter at least one unit to {what}", field="quantities")
    return asked


def _close_if_settled(transfer: Transfer, now: datetime) -> None:
    transfer.updated_at = now
    if all(line.received + line.written_off == line.quantity for line in transfer.lines):
        transfer.status, transfer.closed_at = "received", now
    db.session.flush()


@transactional
def receive(transfer_id: int, received: dict | None = None, *, actor: Actor,
            now: datetime) -> Transfer:
    """Units arriving at the destination (`received`: {SKU, id or product: units}; None =
    all still in transit). The transfer is received once nothing is left in transit."""
    transfer = _locked(transfer_id)
    _require(transfer, "shipped", "received")
    units = _settle(transfer, received, "receive", "received")
    lock_products(units)
    totals = dict(db.session.execute(
        select(Product.id, Product.on_hand).where(among(Product.id, sorted(units)))).all())
    over = [pid for pid, n in units.items() if totals[pid] + n > limits.MAX_STOCK]
    if over:
        raise InvalidInput(f"on hand of {_skus(over)[over[0]]} would exceed"
                           f" {limits.MAX_STOCK:,}", field="quantities")
    reason = f"{transfer.code} from {transfer.source.code}"
    apply_deltas([Move(pid, "transfer_in", on_hand_delta=n, location_id=transfer.destination_id,
                       transfer_id=transfer.id, reason=reason)
                  for pid, n in sorted(units.items())], actor, now)
    for line in transfer.lines:
        line.received += units.get(line.product_id, 0)
    _close_if_settled(transfer, now)
    evaluate_all(sorted(units), now)
    return transfer


@transactional
def write_off(transfer_id: int, quantities: dict | None = None, *, reason: str, actor: Actor,
              now: datetime) -> Transfer:
    """Units that will never arrive (`quantities` as for `receive`; None = all left in
    transit), with a reason: a ledger line at the destination says so, no stock moves."""
    reason = limits.reason_text(reason)
    transfer = _locked(transfer_id)
    _require(transfer, "shipped", "written off")
    units = _settle(transfer, quantities, "write off", "written off")
    moves = [Move(pid, "write_off", location_id=transfer.destination_id,
                  transfer_id=transfer.id,
                  reason=f"{transfer.code}: {plural(n, 'unit')} written off in transit: {reason}")
             for pid, n in sorted(units.items())]
    apply_deltas(moves, actor, now)
    for line in transfer.lines:
        line.written_off += units.get(line.product_id, 0)
    _close_if_settled(transfer, now)
    return transfer


@transactional
def cancel(transfer_id: int, *, actor: Actor, now: datetime) -> Transfer:
    """Drop a draft (nothing has moved). A shipped transfer is received or written off."""
    transfer = _locked(transfer_id)
    if transfer.status == "shipped":
        raise TransferWrongState(
            f"{transfer.code} is already shipped, so it cannot be cancelled: receive its units"
            " or write off what will not arrive; nothing was changed", status="shipped")
    _require(transfer, "draft", "cancelled")
    transfer.status, transfer.closed_at, transfer.updated_at = "cancelled", now, now
    db.session.flush()
    return transfer
