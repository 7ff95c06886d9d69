"""Finding products by what staff type (issue 14): every word must match the SKU, name,
barcode or category, in any order and any case; an exact SKU is found in any case.

On PostgreSQL each word is one ILIKE on `search_text()`, which ix_products_search_trgm
(migration 0007) indexes with trigrams; on SQLite the same LIKE reads every product
(correct, slower: SQLite is for trying Stockroom out).
"""
from __future__ import annotations

from sqlalchemy import and_, func, literal_column, or_, select, text

from ..extensions import db
from ..models import Product
from ..services.transaction import on_postgresql

# A trigram index needs three characters; a shorter word only narrows what longer ones found.
MIN_WORD = 3
MAX_WORDS = 8
MAX_TEXT = 100

_SPACE, _EMPTY = literal_column("' '"), literal_column("''")


def search_text():
    """sku || ' ' || name || ' ' || barcode || ' ' || category, as the index has it (written
    with literals, not bound parameters, so a prepared statement still matches the index).
    A word holds no space, so it can only match within one of the four fields."""
    return (Product.sku + _SPACE + Product.name + _SPACE + func.coalesce(Product.barcode, _EMPTY)
            + _SPACE + func.coalesce(Product.category, _EMPTY))


def clean(raw: str | None) -> str:
    """What was typed, without control characters, trimmed and bounded."""
    return "".join(c for c in (raw or "") if c.isprintable()).strip()[:MAX_TEXT]


def words_of(typed: str) -> list[str]:
    """The distinct words of `typed` (case-blind), at most MAX_WORDS of them."""
    found: dict[str, str] = {}
    for word in typed.split():
        found.setdefault(word.casefold(), word)
    return list(found.values())[:MAX_WORDS]


def indexed(words: list[str]) -> bool:
    """Whether some word has MIN_WORD letters or digits: without one ('ab', '%%%', '_%_')
    the trigram index has nothing to look up and the search would read every product."""
    return any(sum(c.isalnum() for c in word) >= MIN_WORD for word in words)


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches_words(words: list[str]):
    """SQL: the product matches every word (call only when `indexed(words)`)."""
    conditions = []
    for word in words:
        target = search_text()
        if sum(c.isalnum() for c in word) < MIN_WORD:
            # Not through the index (a 1- or 2-letter pattern would make it read all of it):
            # checked on the rows the longer words found.
            target = target.concat(_EMPTY)
        conditions.append(target.ilike(_like(word), escape="\\"))
    return and_(*conditions)


def sku_is(typed: str):
    """SQL: the product's SKU is `typed`, in any case (ix_products_sku_lower)."""
    return func.lower(Product.sku) == typed.lower()


def plan_for_each_search() -> None:
    """On PostgreSQL, plan this transaction's searches for their own patterns: a cached
    generic plan cannot see the pattern and walks a sort index testing every row instead
    (150 ms at 100k products)."""
    if on_postgresql():
        db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def product_filter(typed: str):
    """SQL over Product for the holds and activity filters: the product whose SKU is `typed`
    in any case when there is one, else every product matching its words; None when
    `typed` can find nothing (too short to search, and no such SKU)."""
    exact = db.session.scalar(select(Product.id).where(sku_is(typed)).limit(2))
    if exact is not None:
        return sku_is(typed)
    words = words_of(typed)
    if not indexed(words):
        return None
    plan_for_each_search()
    return matches_words(words)


def matching_product_ids(typed: str):
    """A subquery of the ids `product_filter` finds, or None when no product matches (so
    the page can say so rather than "no holds")."""
    condition = product_filter(typed)
    if condition is None or db.session.scalar(select(Product.id).where(condition).limit(1)) is None:
        return None
    return select(Product.id).where(condition)
