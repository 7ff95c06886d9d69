"""What the Transfers pages read: the list (by status, newest first, keyset pages by id),
one transfer with its lines, and the locations a new transfer may name."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import TRANSFER_STATUSES, StockLevel, Transfer, TransferLine
from ..services.limits import MAX_ID

PAGE_SIZE = 50


@dataclass
class TransferRow:
    transfer: Transfer
    lines: int
    units: int


@dataclass
class TransferPage:
    rows: list[TransferRow]
    next_cursor: int | None  # the last id shown, when older transfers follow


def chosen_status(text: str | None) -> str:
    """A status from the list, or "" (every status)."""
    return text if text in TRANSFER_STATUSES else ""


def transfer_page(status: str, after: int | None) -> TransferPage:
    # ix_transfers_status_id serves a status filter newest first; the primary key the rest.
    query = (select(Transfer)
             .options(joinedload(Transfer.source), joinedload(Transfer.destination),
                      joinedload(Transfer.created_by))
             .order_by(Transfer.id.desc()).limit(PAGE_SIZE + 1))
    if status:
        query = query.where(Transfer.status == status)
    if after is not None and after <= MAX_ID:  # past every id: the newest page
        query = query.where(Transfer.id < after)
    transfers = db.session.scalars(query).all()
    shown = transfers[:PAGE_SIZE]
    sizes = dict(
        (tid, (n, units)) for tid, n, units in db.session.execute(
            select(TransferLine.transfer_id, func.count(), func.sum(TransferLine.quantity))
            .where(TransferLine.transfer_id.in_([t.id for t in shown]))
            .group_by(TransferLine.transfer_id))
    ) if shown else {}
    rows = [TransferRow(t, *sizes.get(t.id, (0, 0))) for t in shown]
    return TransferPage(rows, shown[-1].id if len(transfers) > PAGE_SIZE else None)


def transfer_by_id(transfer_id: int) -> Transfer | None:
    return db.session.scalars(
        select(Transfer).where(Transfer.id == transfer_id)
        .options(joinedload(Transfer.source), joinedload(Transfer.destination),
                 joinedload(Transfer.created_by),
                 selectinload(Transfer.lines).joinedload(TransferLine.product))
        .execution_options(populate_existing=True)).first()


def source_levels(transfer: Transfer) -> dict[int, StockLevel]:
    """The source's level of each line's product: what a draft's lines can take now."""
    ids = [line.product_id for line in transfer.lines]
    if not ids:
        return {}
    return {level.product_id: level for level in db.session.scalars(
        select(StockLevel).where(StockLevel.location_id == transfer.source_id,
                                 StockLevel.product_id.in_(ids)))}

