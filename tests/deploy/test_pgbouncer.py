"""Through PgBouncer 1.18 in transaction mode (DATABASE_POOLER=transaction).

Each test starts its own PgBouncer in front of this run's database. A transaction may run
on any server connection, so prepared statements, startup options and session advisory
locks are not the app's to keep; what the app does instead is checked here.
"""
from __future__ import annotations

import logging
import zlib
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa

from dashboard import create_app
from dashboard.database import postgres_options
from dashboard.extensions import db
from dashboard.services import job_runs, jobs
from tests.helpers.app import app_config

PREPARED_ERRORS = (psycopg.errors.DuplicatePreparedStatement,
                   psycopg.errors.InvalidSqlStatementName)


def through(bouncer_url: str, database_url: str) -> str:
    """`database_url`'s database, reached through the PgBouncer at `bouncer_url`."""
    url = sa.engine.make_url(bouncer_url).set(
        drivername="postgresql+psycopg", database=sa.engine.make_url(database_url).database)
    return url.render_as_string(hide_password=False)


def pooled_app(url: str, **config):
    return create_app(app_config(url, DATABASE_POOLER="transaction", **config))


def repeat_on_two_connections(app) -> list[Exception]:
    """One statement, 8 times on each of two client connections, a transaction each time.

    psycopg prepares a statement on its 6th run on a connection; with one server
    connection behind both clients, the second client's prepare meets the first's.
    """
    errors = []
    with app.app_context():
        first, second = db.engine.connect(), db.engine.connect()
        try:
            for conn in (first, second, first):
                for _ in range(8):
                    try:
                        conn.execute(sa.text("SELECT count(*) FROM products WHERE id > :n"),
                                     {"n": 0})
                        conn.commit()
                    except sa.exc.DBAPIError as error:
                        conn.rollback()
                        errors.append(error.orig)
        finally:
            first.close()
            second.close()
            db.engine.dispose()
    return errors


def test_psycopg_prepared_statements_break_through_transaction_pooling(bouncer, database_url):
    with bouncer(pool_size=1) as base:
        errors = repeat_on_two_connections(
            pooled_app(through(base, database_url), DATABASE_PREPARE="on"))
    assert errors and all(isinstance(e, PREPARED_ERRORS) for e in errors), errors


def test_pooled_app_never_prepares_so_repeats_succeed(bouncer, database_url):
    with bouncer(pool_size=1) as base:
        app = pooled_app(through(base, database_url))
        assert repeat_on_two_connections(app) == []
        with app.app_context():
            prepared = db.session.scalar(sa.text("SELECT count(*) FROM pg_prepared_statements"))
            db.session.remove()
            db.engine.dispose()
    assert prepared == 0


def test_prepared_statements_stay_on_where_the_pooler_supports_them():
    # PgBouncer >= 1.21 with max_prepared_statements > 0 keeps them per client (DATABASE_PREPARE=on).
    kept = postgres_options({}, pooler="transaction", prepare="on")["connect_args"]
    assert "prepare_threshold" not in kept and "options" not in kept
    direct = postgres_options({}, pooler="direct", prepare="auto")["connect_args"]
    assert direct["options"] == "-c jit=off" and "prepare_threshold" not in direct


def test_jit_stays_off_through_the_pooler_when_set_on_the_database(bouncer, database_url):
    # conftest sets it as deploy/README.md has a shop do: ALTER DATABASE ... SET jit = off.
    with bouncer(pool_size=2) as base:
        app = pooled_app(through(base, database_url))
        with app.app_context():
            settings = {db.session.scalar(sa.text("SHOW jit")) for _ in range(5)}
            db.session.remove()
            db.engine.dispose()
    assert settings == {"off"}


def test_a_pooled_database_that_still_jits_is_named_in_a_warning(bouncer, caplog):
    with bouncer(pool_size=2) as base:
        app = pooled_app(through(base, base))  # the `postgres` database: jit at its default
        with caplog.at_level(logging.WARNING, "stockroom.database"), app.app_context():
            db.session.execute(sa.text("SELECT 1"))
            db.session.remove()
            db.engine.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "stockroom.database"]
    assert len(warnings) == 1
    assert "ALTER ROLE postgres IN DATABASE postgres SET jit = off" in warnings[0]


def test_a_job_lock_holds_through_the_pooler_and_is_gone_when_the_run_ends(
        bouncer, database_url, now):
    key = zlib.crc32(b"stockroom.job.expire")
    with bouncer(pool_size=2) as base:
        app = pooled_app(through(base, database_url))
        with app.app_context():
            other = db.engine.connect()
            other.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            try:
                assert jobs.run_scheduled("expire", now) is None  # another run holds it
            finally:
                other.rollback()
                other.close()
            assert jobs.run_scheduled("expire", now).status == "ok"
            assert jobs.run_scheduled("expire", now + timedelta(seconds=30)).status == "ok"
            db.session.remove()
            db.engine.dispose()
    # Not left behind on any server connection (PgBouncer kept them open until it stopped).
    held = db.session.scalar(sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))
    assert held == 0


def test_healthz_through_the_pooler(bouncer, database_url):
    with bouncer(pool_size=2) as base:
        app = pooled_app(through(base, database_url))
        with app.app_context():
            jobs.beat(job_runs.clock())
            client = app.test_client()
            answers = [client.get(path) for path in ("/healthz", "/healthz/web")]
            db.session.remove()
            db.engine.dispose()
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_json()["database"] == "ok"


def test_healthz_says_unreachable_when_postgresql_behind_the_pooler_is_down(bouncer):
    with bouncer(pool_size=2, upstream="host=127.0.0.1 port=1") as base:
        app = pooled_app(through(base, base))
        client = app.test_client()
        answers = [client.get(path) for path in ("/healthz", "/healthz/web")]
        with app.app_context():
            db.engine.dispose()
    assert [a.status_code for a in answers] == [503, 503]
    assert all(a.get_json()["reason"].startswith("database unreachable") for a in answers)
