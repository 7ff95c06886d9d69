"""Small helpers of the pages' wording: plurals, relative times, a hold at its cap."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard.services.wording import plural
from dashboard.web.filters import at_extend_cap, relative_time

AT = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_plural_agrees_with_the_count():
    assert plural(1, "row") == "1 row" and plural(0, "row") == "0 rows"
    assert plural(2000, "change") == "2,000 changes"
    assert plural(3, "box", "boxes") == "3 boxes"


def test_a_time_45_to_59_seconds_away_is_never_blank(app):
    assert relative_time(AT - timedelta(seconds=50), now=AT) == "1 min ago"
    assert relative_time(AT + timedelta(seconds=50), now=AT) == "in 1 min"
    assert relative_time(AT - timedelta(seconds=30), now=AT) == "just now"


def test_a_hold_within_a_minute_of_its_cap_is_at_its_cap():
    cap = AT + timedelta(hours=2)
    assert at_extend_cap(cap, cap) and at_extend_cap(cap - timedelta(seconds=59), cap)
    assert not at_extend_cap(cap - timedelta(minutes=1), cap)
