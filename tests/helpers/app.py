"""The app under test: where it lives, its configuration, the fixed test clock, emptying
its tables.

Plain functions and constants (no fixtures, which live in the conftest.py files).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from dashboard.extensions import db

ROOT = Path(__file__).resolve().parents[2]  # the repository: tests/helpers/app.py
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
TABLES = [
    "notification_deliveries", "notification_events", "notification_subscriptions",
    "webhook_endpoints", "submissions", "idempotency_keys", "login_attempts", "scheduler_heartbeats", "job_runs",
    "stock_movements", "transfer_lines", "transfers", "stock_levels", "stock_alerts", "reservations", "order_items", "orders",
    "cart_items", "carts", "products", "api_clients", "staff_sessions", "staff_users",
]


def app_config(database_url: str, **overrides) -> dict:
    """The test app's configuration on `database_url`, with `overrides` on top."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SUBMIT_TOKEN_REQUIRED": False,  # posts of bare form data, as with CSRF
        "SERVER_NAME": "localhost",
    }
    config.update(overrides)
    return config


def empty_tables():
    """Every table emptied, ids restarted (after each test; between hypothesis examples)."""
    db.session.remove()  # an open transaction would hold locks TRUNCATE waits for
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(sa.text(f"DELETE FROM {table}"))
        # The one location migration 0009 leaves, as it left it; a test's others go.
        conn.execute(sa.text("DELETE FROM locations WHERE code <> 'MAIN'"))
        conn.execute(sa.text(
            "UPDATE locations SET name = 'Main warehouse', kind = 'warehouse', is_active = true,"
            " sellable = true, priority = 0, is_default = true WHERE code = 'MAIN'"))
    db.session.remove()
