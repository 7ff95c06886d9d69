"""Fixtures of the command-line tests: the flask commands through Click's test runner."""
from __future__ import annotations

import pytest

from dashboard.extensions import db


@pytest.fixture
def cli(app):
    """cli("staff", "create", ..., input=...) runs a flask command; returns Click's result."""
    runner = app.test_cli_runner()

    def run(*args, input=None):
        result = runner.invoke(args=list(args), input=input)
        db.session.rollback()  # see what the command committed
        return result

    return run
