"""How a count reads in a sentence: "1 row", "3 rows" (templates use it as the `plural` filter)."""
from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`count` with the word that agrees with it, thousands separated: 1 row, 2,000 rows."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"
