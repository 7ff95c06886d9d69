"""Counting SQL statements, and the ones run after a commit (issue 9: nothing reads the
database after the service commit).

    with statements(db.engine) as seen:
        client.post(...)
    assert seen.commits and seen.after_last_commit == []

`before_cursor_execute` on the engine sees every statement; the engine's `commit` event
marks each real COMMIT (a session's `after_commit` also fires when a savepoint is released,
which is not a commit). Only this thread's statements are counted.

A statement run alone in autocommit (`transaction.run_alone`) goes to the pooled driver
connection directly, past the engine's events: `watch_alone` sees it at the one function that
sends it (`transaction.send_alone`, still the real send). It is a transaction by itself: one
that changed rows counts as a statement and its commit; a read, or a quiet statement that
changed nothing, is neither.

`sent_statements` (PostgreSQL) reads how each statement went off the psycopg connection:
in autocommit psycopg sends no BEGIN before it, and a connection idle after it has no
transaction left to commit.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg.pq import TransactionStatus
from sqlalchemy import event

from dashboard.services import transaction


@dataclass
class Seen:
    statements: list[str] = field(default_factory=list)
    commits: list[int] = field(default_factory=list)  # how many statements ran before each

    @property
    def after_last_commit(self) -> list[str]:
        return self.statements[self.commits[-1]:] if self.commits else []


@contextmanager
def watch_alone(seen):
    """Call `seen(driver_connection, sql, first_row)` after each statement this thread runs
    alone (`transaction.run_alone`) in the block."""
    thread, send = threading.get_ident(), transaction.send_alone

    def watched(driver, sql, params):
        row = send(driver, sql, params)
        if threading.get_ident() == thread:
            seen(driver, sql, row)
        return row

    transaction.send_alone = watched
    try:
        yield
    finally:
        transaction.send_alone = send


def first_word(sql: str) -> str:
    return sql.lstrip().split(None, 1)[0].upper()


@contextmanager
def statements(engine):
    seen, thread = Seen(), threading.get_ident()

    def ours(connection) -> bool:
        return threading.get_ident() == thread

    def alone(connection) -> bool:
        return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def on_statement(conn, _cursor, statement, _params, _context, _many):
        if ours(conn) and not alone(conn):
            seen.statements.append(statement)

    def on_alone(_driver, statement, row):
        if row is not None and first_word(statement) != "SELECT":
            seen.statements.append(statement)
            seen.commits.append(len(seen.statements))

    def on_commit(conn):
        if ours(conn) and not alone(conn):
            seen.commits.append(len(seen.statements))

    listeners = [("before_cursor_execute", on_statement), ("commit", on_commit)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        with watch_alone(on_alone):
            yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


@dataclass
class Sent:
    word: str        # the statement's first word
    alone: bool      # in autocommit: psycopg sent no BEGIN before it
    idle_after: bool  # no transaction open after it: it committed by itself


@contextmanager
def sent_statements(engine):
    """Every statement this thread sends in the block, as Sent."""
    seen: list[Sent] = []
    thread = threading.get_ident()

    def sent(driver, statement):
        seen.append(Sent(first_word(statement), driver.autocommit,
                         driver.info.transaction_status == TransactionStatus.IDLE))

    def after(conn, _cursor, statement, *_args):
        if threading.get_ident() == thread:
            sent(conn.connection.dbapi_connection, statement)

    event.listen(engine, "after_cursor_execute", after)
    try:
        with watch_alone(lambda driver, statement, _row: sent(driver, statement)):
            yield seen
    finally:
        event.remove(engine, "after_cursor_execute", after)


ALONE = Sent("WITH", alone=True, idle_after=True)  # a quiet hold statement, its own transaction
