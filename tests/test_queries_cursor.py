"""The one keyset cursor codec (queries/cursor.py): exact round trips, and anything that is
not one of ours read as "no cursor" (the first page)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from dashboard.queries import cursor


def _token(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("when", [
    datetime(2024, 5, 3, 12, 0, 0, 999_999, tzinfo=timezone.utc),
    datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=timezone.utc),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone.utc),
    datetime(1970, 1, 1, tzinfo=timezone.utc) - timedelta(microseconds=1),
])
def test_times_round_trip_to_the_microsecond(when):
    assert cursor.decode(cursor.encode(when, 42), datetime) == (when, 42)


def test_times_travel_as_whole_microseconds():
    when = datetime(2024, 5, 3, 12, 0, 0, 123_456, tzinfo=timezone.utc)
    raw = json.loads(base64.urlsafe_b64decode(cursor.encode(when, 7) + "=="))
    assert raw == [1_714_737_600_123_456, 7]


@pytest.mark.parametrize("value, kind", [("RED-1", str), ("", str), (0, int), (-5, int),
                                         (2**63 - 1, int)])
def test_text_and_numbers_round_trip(value, kind):
    assert cursor.decode(cursor.encode(value, 2**63 - 1), kind) == (value, 2**63 - 1)


@pytest.mark.parametrize("text, kind", [
    (None, str), ("", int), ("not-a-cursor", str), ("A" * 601, str),
    ("1714737600123456-7", datetime),  # the holds and alerts cursors of the first version
    (_token(["text", 1]), int), (_token([1, 2]), str), (_token([1.5, 2]), int),
    (_token([True, 2]), int), (_token([1, True]), int), (_token([1, "2"]), int),
    (_token(["\u0000", 1]), str), (_token([2**63, 1]), int), (_token([1, 2**63]), int),
    (_token([2**62, 1]), datetime), (_token("RED-1"), str), (_token({"a": 1}), str),
    (_token([1, 2, 3]), int),
])
def test_anything_else_is_not_a_cursor(text, kind):
    assert cursor.decode(text, kind) is None
