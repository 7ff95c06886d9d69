"""Fixtures of the service-layer tests: what the thread races run on."""
from __future__ import annotations

import pytest

from dashboard import create_app
from dashboard.extensions import db
from tests.helpers.app import app_config


@pytest.fixture(scope="module")
def wide_app(app, database_url):
    """A second app on the same database with a pool big enough for 64 threads at once."""
    wide = create_app(app_config(database_url, SQLALCHEMY_ENGINE_OPTIONS={
        "pool_size": 70, "max_overflow": 10, "pool_pre_ping": True}))
    yield wide
    with wide.app_context():
        db.engine.dispose()


@pytest.fixture
def threads(is_postgres) -> int:
    """How many threads a race runs: wide on PostgreSQL, narrower on SQLite's one writer."""
    return 64 if is_postgres else 16
