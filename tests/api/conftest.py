"""Fixtures of the storefront API tests: an API client with its token, a live gunicorn."""
from __future__ import annotations

import pytest

from dashboard import services
from tests.api.helpers import Api
from tests.helpers.servers import gunicorn


@pytest.fixture
def shop(now):
    """The storefront's API client record and its bearer token: (client, token)."""
    client, token = services.create_api_client("web shop", now=now)
    return client, token


@pytest.fixture
def api(app, shop):
    """The Flask test client calling /api/v1 with the shop's token."""
    return Api(app.test_client(), shop[1])


@pytest.fixture(scope="module")
def live_server(is_postgres, database_url, app):
    """A real gunicorn (4 workers) on the test database; yields its base URL."""
    if not is_postgres:
        pytest.skip("needs PostgreSQL row locks (SQLite has one writer at a time)")
    with gunicorn(database_url, workers=4) as base:
        yield base
