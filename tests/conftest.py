"""Test fixtures: a fresh database per run (PostgreSQL from TEST_DATABASE_URL, else SQLite).

The database is created for this run, migrated with the real migrations, emptied after
every test and dropped at the end; nothing depends on data left by an earlier run.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.extensions import db
from dashboard.services import SYSTEM, create_product, create_staff

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
TABLES = [
    "idempotency_keys", "login_attempts", "scheduler_heartbeats", "job_runs",
    "stock_movements", "stock_alerts", "reservations", "order_items", "orders",
    "cart_items", "carts", "products", "api_clients", "staff_users",
]


def _postgres_url(base: str, name: str) -> str:
    url = sa.engine.make_url(base).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "stockroom-test.sqlite3")
        return
    name = f"stockroom_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(_postgres_url(base, sa.engine.make_url(base).database or "postgres"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _postgres_url(base, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_config(database_url: str, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SERVER_NAME": "localhost",
    }
    config.update(overrides)
    return config


class StaffClient(FlaskClient):
    """A test client whose requests never see the previous request's signed-in user.

    Requests made inside the test's app context reuse it, and with it `g`, where
    Flask-Login caches the user: a second client (or a request after signing out) would
    otherwise act as whoever signed in last.
    """

    def open(self, *args, **kwargs):
        if has_app_context():  # a request from another thread has no context to leak from
            g.pop("_login_user", None)
        return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(test_config(database_url))
    app.test_client_class = StaffClient
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(scope="session")
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture
def requires_postgres(is_postgres):
    if not is_postgres:
        pytest.skip(
            "PostgreSQL only: needs concurrent writers (row or advisory locks), a server"
            " process on a shared database, or PostgreSQL-only SQL; SQLite has one writer"
        )


@pytest.fixture(autouse=True)
def app_ctx(app):
    with app.app_context():
        yield
        empty_tables()


def empty_tables():
    """Every table emptied, ids restarted (after each test; between hypothesis examples)."""
    db.session.remove()  # an open transaction would hold locks TRUNCATE waits for
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    db.session.remove()


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def product_factory(now):
    counter = iter(range(1, 10**6))

    def make(sku: str | None = None, on_hand: int = 10, threshold: int = 2, **kwargs):
        sku = sku or f"SKU-{next(counter):05d}"
        return create_product(
            sku, kwargs.pop("name", f"Product {sku}"), actor=SYSTEM, now=now, on_hand=on_hand,
            low_stock_threshold=threshold, **kwargs,
        )

    return make


def login(client, user) -> None:
    """Sign `user` in on this test client by writing the Flask-Login session directly."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


@pytest.fixture
def client_for(app, staff_factory):
    """A signed-in test client for a new staff member of `role`; the member is `client.user`."""

    def make(role: str = "manager", email: str | None = None):
        client = app.test_client()
        client.user = staff_factory(role=role, email=email)
        login(client, client.user)
        return client

    return make


@pytest.fixture
def staff_factory(now):
    def make(role: str = "manager", email: str | None = None, password: str = "correct-horse-1"):
        return create_staff(email or f"{role}@example.com", role=role, password=password,
                            name=role.title(), now=now)

    return make
