"""The fault test's marker, and its figures printed in the terminal summary (so CI shows
them whether it passes or fails)."""
from __future__ import annotations

import pytest

FIGURES = pytest.StashKey[list]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "faults: load through gunicorn while the test's own PostgreSQL is restarted")


@pytest.fixture
def fault_report(request):
    """Keep a table of figures for the end of the run."""
    def keep(lines: list[str]) -> None:
        request.config.stash.setdefault(FIGURES, []).append(lines)
    return keep


def pytest_terminal_summary(terminalreporter, config):
    for lines in config.stash.get(FIGURES, []):
        terminalreporter.section("fault test figures")
        for line in lines:
            terminalreporter.write_line(line)
