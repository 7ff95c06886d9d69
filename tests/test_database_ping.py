"""Pooled PostgreSQL connections are pinged only after they sat idle (database.ping_when_idle):
a connection the server dropped while idle is replaced before anyone uses it; one checked in
a moment ago is used without a round trip.

Each test has an engine of its own with one pooled connection, so the connection checked
out second is the one the server dropped (the app's pool may hold several)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard import database

pytestmark = pytest.mark.direct


@pytest.fixture
def engine(requires_postgres, database_url):
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0)
    database.ping_when_idle(engine)
    yield engine
    engine.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as conn:  # back to the pool on leaving
        return conn.scalar(sa.text("SELECT pg_backend_pid()"))


def _terminate(database_url: str, pid: int) -> None:
    other = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with other.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            # Wait until the server has really ended it (termination is asynchronous). A
            # transaction reads pg_stat_activity from one snapshot, taken at its first read:
            # cleared on every turn, or a first look that still saw the backend loops forever
            # (a CI run timed out so).
            conn.execute(sa.text(
                "DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = "
                f"{int(pid)}) LOOP PERFORM pg_sleep(0.01); PERFORM pg_stat_clear_snapshot();"
                " END LOOP; END $$"))
    finally:
        other.dispose()


def test_a_connection_dropped_while_idle_is_replaced_by_the_ping(engine, database_url,
                                                                monkeypatch):
    first = _backend_pid(engine)
    _terminate(database_url, first)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long"
    assert _backend_pid(engine) != first  # no error: the ping found it dead, the pool reconnected


def test_a_connection_checked_in_a_moment_ago_is_not_pinged(engine, database_url, monkeypatch):
    first = _backend_pid(engine)
    _terminate(database_url, first)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    # Not pinged, so the dead connection is used, fails, and is replaced for the next call.
    with pytest.raises(sa.exc.OperationalError):
        _backend_pid(engine)
    assert _backend_pid(engine) != first
