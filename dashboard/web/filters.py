"""What templates can call: time filters (local, relative, <time>) and the globals `can`
and `open_alert_count`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_login import current_user
from markupsafe import Markup, escape

from ..queries.alerts import open_count
from ..services.wording import plural
from .access import can


def init_app(app: Flask) -> None:
    app.context_processor(_template_globals)
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(relative_time, "relative_time")
    app.add_template_filter(time_tag, "time_tag")
    app.add_template_filter(plural, "plural")


def _open_alert_count() -> int:
    return open_count() if current_user.is_authenticated else 0


def _template_globals() -> dict:
    return {"can": can, "open_alert_count": _open_alert_count, "at_extend_cap": at_extend_cap}


EXTEND_STEP = timedelta(minutes=1)  # the smallest extension the holds page offers


def at_extend_cap(expires_at: datetime, extend_cap: datetime) -> bool:
    """True when a hold cannot be extended by even the smallest step: the holds page says
    "at its cap" instead of offering an Extend that would be refused."""
    return extend_cap - expires_at < EXTEND_STEP


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE", "UTC"))


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    if value is None:
        return ""
    return value.astimezone(_zone()).strftime(fmt)


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """'in 4 min', '3 h ago', 'just now'."""
    if value is None:
        return "never"
    now = now or datetime.now(timezone.utc)
    seconds = int((value - now).total_seconds())
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 45:
        return "in a few seconds" if future else "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = round(seconds / size)
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    return "in 1 min" if future else "1 min ago"  # 45-59 s: never a blank cell


def time_tag(value: datetime | None) -> Markup:
    """<time> with the relative time shown and the exact local time on hover."""
    if value is None:
        return Markup('<span class="muted">never</span>')
    return Markup(
        f'<time datetime="{escape(value.isoformat())}" title="{escape(local_time(value))}">'
        f"{escape(relative_time(value))}</time>"
    )
