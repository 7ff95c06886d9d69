"""Dashboard: the overview tiles (SPEC §6), each a count that links to the list behind it."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, render_template
from flask_login import login_required

from ..queries.overview import tiles
from .htmx import page

bp = Blueprint("overview", __name__)


@bp.get("/")
@bp.get("/overview/tiles", endpoint="tiles")  # what the tiles poll: the same answer
@login_required
def index():
    now = datetime.now(timezone.utc)
    return page("overview/index.html", "overview/_tiles.html", tiles=tiles(now), now=now)


@bp.get("/overview/alert-badge")
@login_required
def alert_badge():
    """The nav's open-alert count, re-fetched when a stock change is announced."""
    return render_template("_alert_badge.html")
