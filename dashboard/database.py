"""How the app connects to PostgreSQL: directly, or through a pooler in transaction mode.

Through PgBouncer in transaction mode (DATABASE_POOLER=transaction) each transaction may
run on a different server connection, so nothing may live in the session:
- no server-side prepared statements (psycopg prepares a statement run 5 times on one
  connection; the next transaction finds it missing, or another client's of the same name);
- no startup options: PgBouncer refuses `options`, so jit=off has to be set on the
  database or role (`ALTER DATABASE stockroom SET jit = off`); a warning says when it is not;
- no session advisory locks (the scheduler takes a transaction-scoped one).

A pooler also changes how an outage looks: PgBouncer queues a query while PostgreSQL is
away (query_wait_timeout, 120 s by default) instead of refusing it, so `probe` bounds the
health check itself.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as ProbeTimeout

from sqlalchemy import event, exc, text

log = logging.getLogger("stockroom.database")

# One probe thread per process: a probe stuck behind a pooler is never joined by another.
_probes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-probe")
_in_flight: dict[int, Future] = {}
_in_flight_lock = threading.Lock()


def postgres_options(options: dict, *, pooler: str, prepare: str) -> dict:
    """Engine options for PostgreSQL under `pooler` ("direct" or "transaction")."""
    connect_args = dict(options.get("connect_args", {}))
    if pooler == "direct":
        # Every query here is short; JIT compiling one costs more than it saves (13 ms of a
        # 30 ms overview count at 100k products).
        connect_args.setdefault("options", "-c jit=off")
    if prepare == "off" or (prepare == "auto" and pooler == "transaction"):
        connect_args["prepare_threshold"] = None
    # An unreachable host is an outage answered in seconds, not after TCP gives up.
    connect_args.setdefault("connect_timeout", 10)
    return {**options, "connect_args": connect_args}


# A connection checked in this recently was alive then: checking it again costs a round trip
# on every transaction (a quarter of a one-statement reserve) and finds nothing. A pooled
# connection idle longer is pinged as `pool_pre_ping` would (HikariCP's aliveBypassWindow).
PING_AFTER_IDLE_SECONDS = 1.0


def ping_when_idle(engine) -> None:
    """`pool_pre_ping` for connections idle more than PING_AFTER_IDLE_SECONDS only.

    A dead connection found by the ping is replaced (DisconnectionError makes the pool
    connect again); one that dies within the window fails its first statement, and the
    dialect's disconnect handling then replaces every pooled connection older than it."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        if record is not None:
            record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("checked_in", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("the pooled connection did not answer")


def probe(engine, timeout: float) -> Exception | None:
    """None when the database answers `SELECT 1` within `timeout` seconds, else the error.

    Requests arriving while a probe is still waiting share it instead of queueing more.
    """
    with _in_flight_lock:
        future = _in_flight.get(id(engine))
        if future is None or future.done():
            future = _in_flight[id(engine)] = _probes.submit(_select_one, engine)
    try:
        future.result(timeout)
    except ProbeTimeout:
        return TimeoutError(f"no answer within {timeout:g} s")
    except Exception as error:
        return error
    return None


def _select_one(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def watch_session_settings(engine, pooler: str) -> None:
    """Through a pooler, say once at the first connection if the database still JITs."""
    if pooler != "transaction" or engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "first_connect")
    def _check(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('jit'), current_database(), current_user")
            jit, database, role = cursor.fetchone()
        dbapi_connection.rollback()
        if jit != "off":
            log.warning(
                "jit is %s for database %s through the pooler; the app cannot turn it off per"
                " connection there: run ALTER ROLE %s IN DATABASE %s SET jit = off",
                jit, database, role, database)
