"""The jobs' timetable: how often each job runs and where its slots fall.

A scheduled run belongs to a slot, the start of its interval
(`slot_at = floor(now / interval) * interval`, counted from the epoch), so every scheduler
process on every host agrees on the slot boundaries. Nothing here touches the database:
the scheduler, the services that run jobs and the pages all read it.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def interval(name: str) -> int:
    """Seconds between runs of `name` (EXPIRE_INTERVAL, ALERTS_INTERVAL, RECONCILE_INTERVAL,
    and NOTIFY_INTERVAL for notification delivery, which every scheduler runs unclaimed)."""
    return int(current_app.config[f"{name.upper()}_INTERVAL"])


def slot_start(now: datetime, seconds: int) -> datetime:
    """Start of the interval slot holding `now`: floor(now / interval) * interval (UTC)."""
    elapsed = int((now - EPOCH).total_seconds() // seconds)
    return EPOCH + timedelta(seconds=elapsed * seconds)


def next_slot(name: str, now: datetime) -> datetime:
    """Where the next slot of `name` after `now` starts."""
    return slot_start(now, interval(name)) + timedelta(seconds=interval(name))


def silence_limit() -> timedelta:
    """A scheduler silent for longer than three expiry intervals is considered down."""
    return timedelta(seconds=3 * interval("expire"))
