"""Fixtures of the dashboard page tests: the test client, and the signed-in roles two
modules share (a fixture for one module's own data or role stays in that module)."""
from __future__ import annotations

import pytest

from tests.helpers.web import login, new_client


@pytest.fixture
def client(app):
    """A test client of the `app` fixture (CSRF off), signed in as nobody yet."""
    return new_client(app)


@pytest.fixture
def manager(client_for):
    """A test client signed in as a manager."""
    return client_for("manager")


@pytest.fixture
def merchandiser(client, staff_factory):
    """A merchandiser signed in on `client` (the tests request through `client`)."""
    user = staff_factory("merchandiser")
    login(client, user)
    return user
