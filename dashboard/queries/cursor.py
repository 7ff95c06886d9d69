"""Keyset cursors: the last row's (sort value, id) as a short URL-safe token.

One codec for every keyset list (stock, holds, alerts). A time travels as whole
microseconds since the epoch, so the cursor is the row's exact position (float seconds
lose the last digits, and a page then repeats or skips a row). Anything that is not one of
ours (garbage, a cursor of an older release, a text cursor on a number sort) decodes to
None: the list starts again from its first page.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from ..services.limits import unsayable

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
MAX_LENGTH = 600
BIGGEST = 2**63 - 1  # the widest integer column (BIGINT); beyond it no row can match


def encode(value: str | int | datetime, row_id: int) -> str:
    if isinstance(value, datetime):
        value = (value - EPOCH) // MICROSECOND  # exact integer arithmetic, no float
    raw = json.dumps([value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= BIGGEST


def decode(text: str | None, kind: type[str] | type[int] | type[datetime]):
    """(value, id) with value of `kind`, or None when `text` is missing or not one of ours."""
    if not text or len(text) > MAX_LENGTH:
        return None
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        return None
    if not _whole(row_id):
        return None
    if kind is str:
        # Text no column can hold (NUL, a lone surrogate) is never a real row's value.
        return (value, row_id) if isinstance(value, str) and not unsayable(value) else None
    if not _whole(value):
        return None
    if kind is datetime:
        try:
            return EPOCH + value * MICROSECOND, row_id
        except OverflowError:
            return None
    return value, row_id
