"""The one transaction helper: commit when the work returns, roll back when it raises.

`@transactional` makes a public service call one transaction; `with transaction():` does
the same for a block (a batch of a long job, a claim made before other work starts).
Nothing else in the app calls `commit()` or `rollback()` around its writes.

A request whose answer must commit together with its effect (an API call with an
Idempotency-Key, a staff submit with its one-time token) opens a `unit_of_work()` around
the service call: inside it a service's transaction is a SAVEPOINT (a refusal rolls back
to it and leaves the outer work, e.g. the claimed key, in place) or, `flat`, just part of
the outer transaction; the outer block commits once, after the answer is built, so no
statement runs after the commit.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..extensions import db

_OUTER = "stockroom.unit_of_work"


class OutcomeUnknown(Exception):
    """The connection was lost while committing: the work may or may not have been saved."""


@dataclass
class Work:
    """The open unit of work; `discard()` makes it roll back instead of committing."""

    savepoints: bool
    single_call: bool = False
    discarded: bool = False

    def discard(self) -> None:
        self.discarded = True


@contextmanager
def unit_of_work(savepoints: bool = True, single_call: bool = False):
    """One transaction around a request's service call and its answer (see the module).

    `single_call`: the block is one service call whose answer is built from what the call
    returns, with nothing before it to keep or roll back; a call that is one statement may
    then commit it by itself (`run_alone`)."""
    session = db.session()
    work = Work(savepoints, single_call)
    session.info[_OUTER] = work
    # The answer is built before the commit; nothing needs the objects refreshed after it.
    previous, session.expire_on_commit = session.expire_on_commit, False
    try:
        try:
            yield work
        except BaseException:
            db.session.rollback()
            raise
        if work.discarded:
            db.session.rollback()
        else:
            _commit()
    finally:
        session.info.pop(_OUTER, None)
        session.expire_on_commit = previous


def _commit() -> None:
    try:
        db.session.commit()
    except (DBAPIError, PoolTimeout) as error:
        if isinstance(error, DBAPIError) and not is_disconnect(error):
            raise  # the database refused the commit (e.g. a deferred constraint): rolled back
        raise OutcomeUnknown(str(error)) from error


def is_disconnect(error: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not a refusal of it)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError) and type(error.orig).__module__ == "sqlite3":
        # SQLite says OperationalError for mistakes in SQL too ("no such column"): only a
        # file it cannot open or a lock it cannot get is the database being unavailable.
        return any(words in str(error.orig) for words in ("unable to open", "locked"))
    return isinstance(error, (OperationalError, InterfaceError))


def in_unit_of_work() -> bool:
    return _OUTER in db.session().info


@contextmanager
def transaction():
    """Run the block as one transaction on the app's session (a savepoint inside a unit of
    work, or nothing of its own in a flat one: the outer block commits or rolls back)."""
    work = db.session().info.get(_OUTER)
    if work is not None:
        if work.savepoints:
            with db.session.begin_nested():
                yield
        else:
            yield
        return
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def on_postgresql() -> bool:
    """Whether the session's database is PostgreSQL (the one-statement paths need it)."""
    return db.session.get_bind().dialect.name == "postgresql"


def can_run_alone() -> bool:
    """Whether a statement run now may be a whole transaction by itself (`run_alone`):
    on PostgreSQL, outside a unit of work (whose effect commits with its answer) unless it
    is a single call's, with no transaction open on the session and nothing waiting to be
    flushed into one, so nothing done before it is left to commit with it."""
    session = db.session()
    work = session.info.get(_OUTER)
    return (on_postgresql() and (work is None or work.single_call)
            and not session.in_transaction()
            and not (session.new or session.dirty or session.deleted))


def run_alone(statement, params: dict):
    """Run one statement as a whole transaction; its first row, or None.

    For a call whose entire effect is that one statement, and only where `can_run_alone()`.
    In autocommit the statement and its COMMIT are one round trip, where BEGIN, statement,
    COMMIT are three and keep the rows it locked locked across the last two. A connection
    lost while it ran leaves the outcome unknown, as a lost COMMIT does."""
    session = db.session()
    connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        row = connection.execute(statement, params).first()
    except BaseException as error:
        session.rollback()
        if isinstance(error, DBAPIError) and is_disconnect(error):
            raise OutcomeUnknown(str(error)) from error
        raise
    session.commit()  # sends nothing (the statement committed itself); frees the connection
    return row


def keep_so_far() -> None:
    """Keep what the call did so far even if it now refuses (e.g. lazily expired holds)."""
    work = db.session().info.get(_OUTER)
    if work is None:
        db.session.commit()
    # In a unit of work the refusal rolls this back with the rest; the scheduler's expiry
    # sweep gives the units back soon anyway.


def transactional(fn):
    """Run a public service call as one transaction."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with transaction():
            return fn(*args, **kwargs)

    return run
