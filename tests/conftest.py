"""Fixtures every layer uses: a fresh database per run (PostgreSQL from TEST_DATABASE_URL,
else SQLite), the app, its records, signed-in clients.

The database is created for this run, migrated with the real migrations, emptied after
every test and dropped at the end; nothing depends on data left by an earlier run.

Where fixtures live: here if more than one layer uses them; in tests/<layer>/conftest.py
the machinery a layer's tests run through (its clients, servers, browser, processes, extra
connections, CLI runner) and any fixture two of its modules share; a fixture that sets up
one module's own data or actors stays in that module, beside the tests that read it.
Plain helper functions live in tests/helpers/ (more than one layer) or
tests/<layer>/helpers.py, and are imported normally; nothing imports a conftest.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.services import SYSTEM, create_product, create_staff
from tests.helpers.app import NOW, app_config, empty_tables
from tests.helpers.web import PASSWORD, StaffClient, login

TESTS = Path(__file__).parent


def pytest_configure(config):
    # Every directory of tests is a package, so modules import as tests.<layer>.<name> and
    # two layers may each have a test_holds.py. A directory without __init__.py would put
    # its modules back at the top level, where one basename twice is an import error.
    bare = sorted(
        str(folder.relative_to(TESTS.parent)) for folder in [TESTS, *TESTS.rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py")) and not (folder / "__init__.py").exists()
    )
    if bare:
        raise pytest.UsageError(f"add an __init__.py to {', '.join(bare)} (see tests/conftest.py)")


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
        # As deploy/README.md has a shop do: set on the database, it survives a pooler.
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET jit = off'))
    try:
        yield _postgres_url(base, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(app_config(database_url))
    app.test_client_class = StaffClient
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(scope="session")
def csrf_app(database_url):
    """The app with CSRF enforced, sharing the test database (already migrated by `app`)."""
    csrf_app = create_app(app_config(database_url, WTF_CSRF_ENABLED=True))
    csrf_app.test_client_class = StaffClient
    return csrf_app


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
    def make(role: str = "manager", email: str | None = None, password: str = PASSWORD):
        return create_staff(email or f"{role}@example.com", role=role, password=password,
                            name=role.title(), now=now)

    return make


@pytest.fixture
def blank_database(database_url, tmp_path):
    """A database of its own, on the server under test, with no tables yet."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path}/migrations.sqlite3"
        return
    url = sa.engine.make_url(database_url)
    name = f"{url.database}_migrations"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
