"""The product page's stock-over-time chart: inline SVG step lines, drawn on the server."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..models import Product


@dataclass
class Chart:
    """An inline SVG line chart of on hand / reserved / available (step lines)."""

    width: int
    height: int
    series: list[tuple[str, str, str]]  # (label, css class, SVG points)
    y_ticks: list[tuple[float, int]]
    x_labels: list[tuple[float, datetime]]
    summary: str
    plot_left: int
    plot_right: int
    plot_bottom: int


def stock_chart(product: Product, rows: list[tuple[datetime, int, int]], now: datetime
                ) -> Chart | None:
    """`rows` are (when, on hand, reserved) oldest first (queries.products.recent_levels);
    None without history."""
    if not rows:
        return None
    width, height, left, right, top, bottom = 800, 220, 48, 12, 10, 24
    start, end = rows[0][0], max(now, rows[-1][0])
    span = max((end - start).total_seconds(), 1.0)
    top_value = max(max(r[1] for r in rows), 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(when: datetime) -> float:
        return round(left + (when - start).total_seconds() / span * plot_w, 1)

    def y(value: int) -> float:
        return round(top + plot_h - value / top_value * plot_h, 1)

    def points(value_of) -> str:
        out, previous, at = [], None, float(left)
        for when, on_hand, reserved in rows:
            value = value_of(on_hand, reserved)
            # Ledger order is commit order; concurrent writers' clocks may differ by a hair.
            at = max(at, x(when))
            if previous is not None:
                out.append(f"{at},{y(previous)}")  # step: hold the level until the change
            out.append(f"{at},{y(value)}")
            previous = value
        out.append(f"{x(end)},{y(previous)}")
        return " ".join(out)

    series = [
        ("On hand", "line-on-hand", points(lambda h, r: h)),
        ("Reserved", "line-reserved", points(lambda h, r: r)),
        ("Available", "line-available", points(lambda h, r: h - r)),
    ]
    ticks = sorted({0, top_value // 2, top_value})
    y_ticks = [(y(t), t) for t in ticks]
    x_labels = [(x(start), start), (x(end), end)]
    low = min(r[1] - r[2] for r in rows)
    summary = (f"Stock of {product.sku} over the last {len(rows)} changes: on hand now "
               f"{product.on_hand}, reserved {product.reserved}, available {product.available}; "
               f"lowest available in this period {low}, highest on hand {top_value}.")
    return Chart(width, height, series, y_ticks, x_labels, summary, left, width - right, top + plot_h)
