"""The product page's stock-over-time chart: inline SVG step lines with a focusable marker per
change, drawn on the server over a chosen time range (24 h, 7 d, 30 d or all)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..models import Product
from ..queries.products import Level
from .filters import local_time

RANGES = {"24h": ("24 h", timedelta(hours=24)), "7d": ("7 d", timedelta(days=7)),
          "30d": ("30 d", timedelta(days=30)), "all": ("All", None)}
DEFAULT_RANGE = "7d"


def chosen_range(value: str | None) -> str:
    return value if value in RANGES else DEFAULT_RANGE


def range_start(key: str, now: datetime) -> datetime | None:
    span = RANGES[key][1]
    return now - span if span is not None else None


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # app.css gives each its colour and dash; the legend shows the same
    points: str  # SVG polyline points


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    text: str  # the figures at that change: its text equivalent and the readout


@dataclass
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    range_key: str
    series: list[Series]
    markers: list[Marker]
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    summary: str
    now_text: str
    changes: list[Level]  # the table alternative, oldest first


def _describe(level: Level) -> str:
    moved = []
    if level.on_hand_delta:
        moved.append(f"on hand {level.on_hand_delta:+,}")
    if level.reserved_delta:
        moved.append(f"reserved {level.reserved_delta:+,}")
    change = f" ({', '.join(moved)})" if moved else ""
    return (f"{local_time(level.when, '%Y-%m-%d %H:%M')}: {level.kind}{change}. On hand "
            f"{level.on_hand:,}, reserved {level.reserved:,}, available {level.available:,}.")


def _x_format(span: timedelta) -> str:
    if span <= timedelta(days=2):
        return "%d %b %H:%M"
    return "%d %b" if span <= timedelta(days=90) else "%b %Y"


def stock_chart(product: Product, range_key: str, start_level: Level | None,
                changes: list[Level], now: datetime) -> Chart | None:
    """`start_level` is the level the range opens at, `changes` the changes within it, oldest
    first (queries.products.levels_since); None when the product has no history at all."""
    if start_level is None and not changes:
        return None
    width, height, left, right, top, bottom = 800, 240, 52, 16, 12, 28
    since = range_start(range_key, now)
    # A history that begins inside the range starts the axis at its first change.
    start = since if since is not None and start_level is not None else changes[0].when
    end = max(now, changes[-1].when) if changes else now
    span = max((end - start).total_seconds(), 1.0)
    levels = ([start_level] if start_level else []) + changes
    top_value = max(max(level.on_hand for level in levels), 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(when: datetime) -> float:
        return round(left + max((when - start).total_seconds(), 0) / span * plot_w, 1)

    def y(value: int) -> float:
        return round(top + plot_h - value / top_value * plot_h, 1)

    def points(value_of) -> str:
        out, previous, at = [], None, float(left)
        if start_level is not None:
            previous = value_of(start_level)
            out.append(f"{left},{y(previous)}")
        for level in changes:
            # Ledger order is commit order; concurrent writers' clocks may differ by a hair.
            at = max(at, x(level.when))
            if previous is not None:
                out.append(f"{at},{y(previous)}")  # step: hold the level until the change
            previous = value_of(level)
            out.append(f"{at},{y(previous)}")
        out.append(f"{x(end)},{y(previous)}")
        return " ".join(out)

    series = [
        Series("On hand", "line-on-hand", points(lambda level: level.on_hand)),
        Series("Reserved", "line-reserved", points(lambda level: level.reserved)),
        # Drawn last, so where nothing is reserved it shows on top of On hand.
        Series("Available", "line-available", points(lambda level: level.available)),
    ]
    markers, at = [], float(left)
    for level in changes:
        at = max(at, x(level.when))
        markers.append(Marker(at, y(level.on_hand), _describe(level)))
    fmt = _x_format(end - start)
    x_ticks = [(round(left + plot_w * i / 4, 1), local_time(start + (end - start) * i / 4, fmt))
               for i in range(5)]
    y_ticks = [(y(t), t) for t in sorted({0, top_value // 2, top_value})]
    label = RANGES[range_key][0]
    low = min(level.available for level in levels)
    period = "in all its history" if since is None else f"in the last {label}"
    summary = (f"Stock of {product.sku} {period}: {len(changes):,} "
               f"{'change' if len(changes) == 1 else 'changes'}; lowest available {low:,}, "
               f"highest on hand {top_value:,}.")
    now_text = (f"Now: on hand {product.on_hand:,}, reserved {product.reserved:,}, "
                f"available {product.available:,}.")
    return Chart(width, height, left, width - right, top, top + plot_h, range_key, series,
                 markers, y_ticks, x_ticks, summary, now_text, changes)
