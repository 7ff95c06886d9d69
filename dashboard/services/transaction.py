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


class NotOneStatement(Exception):
    """A call asked to be one statement (an answer to remember with it: holds_pg.Remembered)
    cannot be: it would need more, or its key was taken meanwhile. Nothing was changed; the
    caller runs its general path."""


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


LOCK_NOT_AVAILABLE, DEADLOCK = "55P03", "40P01"


def sqlstate(error: BaseException) -> str | None:
    """PostgreSQL's error code for a refusal (None from other databases)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None)


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


def run_alone(statement, params: dict) -> tuple | None:
    """Run one statement as a whole transaction; its first row (a plain tuple), or None.

    For a call whose entire effect is that one statement, and only where `can_run_alone()`.
    In autocommit the statement and its COMMIT are one round trip, where BEGIN, statement,
    COMMIT are three and keep the rows it locked locked across the last two.

    It is the hot path of every storefront call (issue 12), so it goes to the pooled driver
    connection directly: the session, a Core connection and a result object cost more client
    CPU than the statement's own round trip (bench/reserve.py). The pool's checkout (its idle
    ping) and checkin still run; the statement's text is compiled once for the engine's
    dialect; rows come back as the driver gives them (callers convert times themselves).
    Errors come back as SQLAlchemy's, as from any other statement; a connection lost while
    it ran is invalidated and leaves the outcome unknown, as a lost COMMIT does."""
    engine = db.engine
    sql = _driver_sql(engine, statement)
    pooled = None
    try:
        pooled = engine.raw_connection()
        driver = pooled.driver_connection
        driver.autocommit = True
    except engine.dialect.loaded_dbapi.Error as error:  # nothing was sent: an outage
        wrapped = _wrapped(engine, None, None, error, pooled and pooled.dbapi_connection)
        if pooled is not None:
            _give_back(pooled, wrapped.connection_invalidated and error)
        raise wrapped from error
    try:
        return send_alone(driver, sql, params)
    except engine.dialect.loaded_dbapi.Error as error:
        wrapped = _wrapped(engine, sql, params, error, pooled.dbapi_connection)
        if wrapped.connection_invalidated:
            _give_back(pooled, error)
            pooled = None
            raise OutcomeUnknown(str(wrapped)) from wrapped
        raise wrapped from error
    finally:
        if pooled is not None:
            driver.autocommit = False
            _give_back(pooled, None)


def _give_back(pooled, lost: BaseException | None) -> None:
    """To the pool, or (its connection lost) discarded so the pool makes a new one."""
    if lost:
        pooled.invalidate(lost)
    pooled.close()


def send_alone(driver, sql: str, params: dict) -> tuple | None:
    """The one round trip of `run_alone` (tests/helpers/statements.py watches it here).
    Every statement run alone returns rows (RETURNING or a read)."""
    with driver.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


_DRIVER_SQL: dict[int, tuple[object, str]] = {}


def _driver_sql(engine, statement) -> str:
    """The statement as the driver takes it (`%(name)s` parameters), compiled once: the
    hot statements are module constants."""
    known = _DRIVER_SQL.get(id(statement))
    if known is None or known[0] is not statement:
        known = _DRIVER_SQL[id(statement)] = (
            statement, statement.compile(dialect=engine.dialect).string)
    return known[1]


def _wrapped(engine, sql, params, error, dbapi_connection) -> DBAPIError:
    """A driver error as SQLAlchemy raises it for any other statement (same classes, same
    disconnect test), so the outage handling and the callers see one kind of error."""
    dialect = engine.dialect
    return DBAPIError.instance(
        sql, params, error, dialect.loaded_dbapi.Error,
        connection_invalidated=dialect.is_disconnect(error, dbapi_connection, None),
        dialect=dialect)


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
