"""Reading numbers out of URLs and forms without trusting them."""
from __future__ import annotations


def whole_number_or_none(text: str | None, max_digits: int = 18) -> int | None:
    """`text` as a non-negative int when it is plain ASCII digits (at most `max_digits`),
    else None. str.isdigit() alone also accepts '²' and '٣', which int() refuses."""
    text = (text or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None
