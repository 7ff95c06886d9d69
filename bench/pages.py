"""Benchmark: every dashboard page at scale, server side (SPEC §11: p95 <= 50 ms).

Builds `stockroom_bench_pages` (dropped and recreated; `--reuse` keeps it when it was built
from the current migrations and only moves the active holds' times up to now) with bulk
SQL, not the ORM:
- 100k products (--products; the holds scale with them) with shop-like SKUs and names
  ("TSH-NVY-004217", "Classic navy cotton t-shirt M"); about 5% out of stock, 10% low, 3%
  inactive;
- 5 locations (--locations: MAIN and stores STORE-2..N), a stock level per product at each:
  each hold at one of them, its level's reserved the sum of its holds there, the free
  stock spread evenly (MAIN takes the remainder), the product's figures the sums;
- 1M reservations, 10k active among the newest 50k rows: expiries spread (3% overdue, 15%
  expiring within 5 min, 2% older than the stuck age), owners mixed (session, customer,
  cart, order); 20k carts whose items cover their holds except ~10%, 30k orders (70%
  pending, the rest confirmed, shipped or cancelled), so every stuck reason occurs;
- ~210k ledger rows that sum to the counters per level (I3): a receive per level, 30k adjusts,
  20k counts, a reserve per active hold, reserve/release or reserve/expire pairs for 21k
  ended holds, 20 busy products with 400 movements each;
- alerts from `services.evaluate_alerts` (every low/out product), a quarter of them
  acknowledged, plus 5000 resolved; 20 staff, 3 API clients, 6000 job runs.
Then `services.check()` (I1-I6 must hold) and VACUUM ANALYZE.

Then times each page and main partial with the Flask test client, signed in through the
real sign-in form as a manager (the admin pages as an admin): warm-ups, then N requests
rotating search terms, filters and keyset cursors (followed from the pages' own links).
Around each request, SQLAlchemy cursor events count the statements and add up their
database time: the bare SQL the page runs ("db"). "other" is the rest of the wall time
(Flask, ORM, Jinja, and waiting for a CPU); "app cpu" is this process's CPU time, the
page's own cost whatever the machine's load. A few write actions (inline adjust and
count, release, acknowledge) are timed the same way. Repeated statements are prepared by
psycopg after 5 runs, as in production, so generic plans are part of what is measured.

    .venv/bin/python bench/pages.py [--reuse] [-n 50] [--only PAGE] [--url postgresql://...]
                                    [--products 100000] [--locations 5]
Server and user from --url (default postgresql://postgres@127.0.0.1/postgres).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from bench.stores import add_stores  # noqa: E402
from dashboard import create_app, services  # noqa: E402
from dashboard.extensions import db  # noqa: E402

DB_NAME = "stockroom_bench_pages"
TARGET_MS = 50.0
PASSWORD = "bench-password-1"
MANAGER = "manager@bench.example"
ADMIN = "admin@bench.example"


def database_url(base: str, name: str) -> str:
    return sa.engine.make_url(base).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)


# --- data ----------------------------------------------------------------------------------

WORDS = {
    "prefix": "TSH MUG HAT SCK BAG JKT CAP BTL PEN NTB LMP TWL PLW SHO BLT",
    "noun": "t-shirt mug hat socks tote jacket cap bottle pen notebook lamp towel pillow shoes belt",
    "code": "BLK WHT RED BLU GRN GRY NVY OLV PNK YLW",
    "colour": "black white red blue green grey navy olive pink yellow",
    "adjective": "Classic Everyday Premium Vintage Organic Slim Relaxed Heavy Travel Studio Coastal Alpine",
    "material": "cotton linen wool bamboo ceramic steel leather canvas denim recycled",
    "size": "XS S M L XL XXL",
}


def _array(key: str) -> str:
    return "ARRAY[" + ", ".join(f"'{w}'" for w in WORDS[key].split()) + "]"


# Each statement runs with :now bound. Holds: reservation i is active when i > 950000 and
# i % 5 = 0: the newest rows, interleaved with holds that have already ended (as in a shop).
BUILD = [
    ("products", f"""
        INSERT INTO products (id, sku, name, price, on_hand, reserved, low_stock_threshold,
                              is_active, alert_muted, last_stock_check, created_at, updated_at,
                              category, barcode)
        SELECT i,
               ({_array('prefix')})[1 + h % 15] || '-' || ({_array('code')})[1 + h / 15 % 10]
                   || '-' || lpad(i::text, 6, '0'),
               ({_array('adjective')})[1 + h2 % 12] || ' ' || ({_array('colour')})[1 + h / 15 % 10]
                   || ' ' || ({_array('material')})[1 + h2 / 12 % 10] || ' '
                   || ({_array('noun')})[1 + h % 15] || ' ' || ({_array('size')})[1 + h2 / 120 % 6],
               round(4.99 + (h2 % 20000) / 100.0, 2), 0, 0,
               (ARRAY[5, 10, 10, 20, 25, 50])[1 + h / 150 % 6],
               h2 % 100 >= 3, false, :now - (h % 90) * interval '1 day',
               :now - interval '400 days', :now - (h % 300) * interval '1 hour',
               initcap(({_array('noun')})[1 + h % 15]),
               CASE WHEN i % 2 = 0 THEN '40' || lpad(i::text, 11, '0') END
        FROM (SELECT i, abs(hashint4(i)) AS h, abs(hashint4(i + 100003)) AS h2
              FROM generate_series(1, 100000) AS i) s"""),
    ("carts", """
        INSERT INTO carts (id, session_key, customer_id, created_at, updated_at)
        SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'cs_' || md5(i::text) END,
               CASE WHEN i % 3 = 0 THEN 1 + i * 7 % 50000 END,
               :now - (i % 7200) * interval '1 minute', :now - (i % 600) * interval '1 second'
        FROM generate_series(1, 20000) AS i"""),
    # Order i's status by i % 20: 70% pending, then confirmed, shipped, cancelled.
    ("orders", """
        INSERT INTO orders (id, customer_id, status, total, created_at, updated_at)
        SELECT i, 1 + abs(hashint4(i)) % 50000,
               CASE WHEN i % 20 < 14 THEN 'pending' WHEN i % 20 < 17 THEN 'confirmed'
                    WHEN i % 20 < 19 THEN 'shipped' ELSE 'cancelled' END,
               0, :now - (i % 43200) * interval '1 minute', :now - (i % 600) * interval '1 second'
        FROM generate_series(1, 30000) AS i"""),
    ("reservations", """
        INSERT INTO reservations (id, product_id, location_id, quantity, session_key,
                                  customer_id, cart_id, order_id, status, created_at,
                                  expires_at, ended_at, end_reason, created_by_api_client_id)
        SELECT i, product_id, 1 + abs(hashint4(i + 7)) % :locations, quantity,
               CASE WHEN owner = 0 THEN 'ses_' || lpad(to_hex(h), 8, '0') || lpad(to_hex(i), 8, '0') END,
               CASE WHEN owner = 1 THEN 1 + h % 50000 END,
               CASE WHEN owner = 2 THEN 1 + h % 20000 END,
               -- holds on orders: 4% on a confirmed/shipped/cancelled order (stuck)
               CASE WHEN owner = 3 THEN 1 + 20 * (h % 1500)
                    + CASE WHEN h % 25 = 0 THEN 14 + h / 25 % 6 ELSE h / 7 % 14 END END,
               status, created_at, expires_at,
               CASE WHEN status <> 'active' THEN created_at + (1 + h % 30) * interval '1 minute' END,
               CASE status WHEN 'released' THEN 'customer emptied the cart'
                           WHEN 'expired' THEN 'expired: not completed in time'
                           WHEN 'committed' THEN 'order confirmed' END,
               1
        FROM (
            SELECT i, h, 1 + abs(hashint4(i * 3)) % 100000 AS product_id, 1 + i % 3 AS quantity,
                   h % 4 AS owner,
                   CASE WHEN active THEN 'active'
                        ELSE (ARRAY['released', 'expired', 'committed'])[1 + i % 3] END AS status,
                   CASE WHEN NOT active THEN :now - interval '60 days' + i * interval '5 seconds'
                        WHEN bucket IN (18, 19)
                            THEN :now - interval '90 minutes' - (h % 1800) * interval '1 second'
                        ELSE :now - interval '15 minutes' + expires_in * interval '1 second' END
                       AS created_at,
                   CASE WHEN NOT active THEN :now - interval '60 days' + i * interval '5 seconds' + interval '15 minutes'
                        ELSE :now + expires_in * interval '1 second' END AS expires_at
            FROM (
                SELECT i, abs(hashint4(i)) AS h, i > 950000 AND i % 5 = 0 AS active,
                       i / 5 % 100 AS bucket,
                       CASE WHEN i / 5 % 100 < 3 THEN -1 - abs(hashint4(i)) % 600     -- overdue
                            WHEN i / 5 % 100 < 18 THEN 10 + abs(hashint4(i)) % 280    -- within 5 min
                            ELSE 300 + abs(hashint4(i)) % 600 END AS expires_in
                FROM generate_series(1, 1000000) AS i
            ) g
        ) r"""),
    # Carts hold their holds' products, except ~10% (cart no longer holds it: stuck).
    ("cart_items", """
        INSERT INTO cart_items (cart_id, product_id, quantity, added_at)
        SELECT cart_id, product_id, max(quantity), min(created_at) FROM reservations
        WHERE status = 'active' AND cart_id IS NOT NULL AND id / 5 % 10 <> 7
        GROUP BY cart_id, product_id
        UNION ALL
        SELECT i, 1 + abs(hashint4(i + 7)) % 100000, 1 + i % 2, :now - interval '1 hour'
        FROM generate_series(1, 20000) AS i
        ON CONFLICT DO NOTHING"""),
    # One line per order, plus a line for each of its active holds.
    ("order_items", """
        INSERT INTO order_items (order_id, product_id, quantity, price)
        SELECT id, 1 + abs(hashint4(id + 11)) % 100000, 1, 19.99 FROM orders
        UNION ALL
        SELECT order_id, product_id, quantity, 19.99 FROM reservations
        WHERE status = 'active' AND order_id IS NOT NULL"""),
    ("counters", """
        WITH held AS (SELECT product_id, sum(quantity) AS held FROM reservations
                      WHERE status = 'active' GROUP BY product_id)
        UPDATE products p
        SET reserved = coalesce(held.held, 0),
            on_hand = coalesce(held.held, 0) + CASE
                WHEN abs(hashint4(p.id + 5)) % 100 < 5 THEN 0                           -- out
                WHEN abs(hashint4(p.id + 5)) % 100 < 15
                    THEN 1 + abs(hashint4(p.id + 9)) % p.low_stock_threshold             -- low
                ELSE p.low_stock_threshold + 1 + abs(hashint4(p.id + 9)) % 500 END
        FROM products q LEFT JOIN held ON held.product_id = q.id
        WHERE p.id = q.id"""),
    # Each level: its holds there, plus an even share of the product's free units.
    ("levels", """
        INSERT INTO stock_levels (product_id, location_id, on_hand, reserved, last_stock_check,
                                  product_threshold, product_is_active)
        SELECT p.id, l.id,
               coalesce(h.held, 0) + (p.on_hand - p.reserved) / :locations
                   + CASE WHEN l.id = 1 THEN (p.on_hand - p.reserved) % :locations ELSE 0 END,
               coalesce(h.held, 0), CASE WHEN l.id = 1 THEN p.last_stock_check END,
               p.low_stock_threshold, p.is_active
        FROM products p CROSS JOIN locations l
        LEFT JOIN (SELECT product_id, location_id, sum(quantity) AS held FROM reservations
                   WHERE status = 'active' GROUP BY product_id, location_id) h
          ON h.product_id = p.id AND h.location_id = l.id"""),
    ("staff", """
        INSERT INTO staff_users (email, name, password_hash, role, is_active, last_login_at,
                                 created_at)
        SELECT 'staff' || i || '@bench.example', 'Staff ' || i, m.password_hash,
               (ARRAY['viewer', 'merchandiser', 'support', 'manager'])[1 + i % 4], i % 9 <> 0,
               :now - i * interval '1 hour', :now - interval '300 days'
        FROM generate_series(1, 18) AS i, staff_users m WHERE m.email = 'manager@bench.example'"""),
    # The ledger: rows built with their deltas, then numbered in time order with running sums.
    ("ledger", """
        CREATE TEMP TABLE bench_moves AS
        -- stock arrived at each level that has some (3 more at MAIN for 30% of products,
        -- later adjusted away as damaged there: adjusts, counts and busy products at MAIN)
        SELECT product_id, location_id, 'receive' AS kind,
               on_hand + CASE WHEN location_id = 1 AND product_id % 10 < 3 THEN 3 ELSE 0 END
                   AS on_hand_delta,
               0 AS reserved_delta, 1 + product_id % 18 AS staff, NULL::int AS client,
               NULL::bigint AS reservation_id,
               'delivery PO-' || (10000 + product_id / 50) AS reason,
               :now - interval '80 days' + (product_id % 1000) * interval '1 minute'
                   + location_id * interval '1 second' AS created_at
        FROM stock_levels WHERE location_id = 1 OR on_hand > 0
        UNION ALL
        SELECT id, 1, 'adjust', -3, 0, 1 + id % 18, NULL, NULL, 'damaged in the warehouse',
               :now - interval '20 days' + (id % 5000) * interval '1 minute'
        FROM products WHERE id % 10 < 3
        UNION ALL
        SELECT id, 1, 'count', 0, 0, 1 + id % 18, NULL, NULL, 'cycle count: matches',
               :now - interval '10 days' + (id % 5000) * interval '1 minute'
        FROM products WHERE id % 5 = 0
        UNION ALL
        SELECT product_id, location_id, 'reserve', 0, quantity, NULL, 1, id, NULL, created_at
        FROM reservations WHERE status = 'active'
        UNION ALL
        SELECT product_id, location_id, 'reserve', 0, quantity, NULL, 1, id, NULL, created_at
        FROM reservations WHERE id % 31 = 1 AND status IN ('released', 'expired')
        UNION ALL
        SELECT product_id, location_id,
               CASE status WHEN 'released' THEN 'release' ELSE 'expire' END,
               0, -quantity, NULL,
               CASE WHEN status = 'released' THEN 1 END, id, end_reason, ended_at
        FROM reservations WHERE id % 31 = 1 AND status IN ('released', 'expired')
        UNION ALL
        -- busy products: 400 adjustments each that cancel out in pairs
        SELECT p, 1, 'adjust', CASE WHEN k % 2 = 0 THEN 2 ELSE -2 END, 0, 1 + k % 18, NULL,
               NULL, CASE WHEN k % 2 = 0 THEN 'returned to stock' ELSE 'sold in the shop' END,
               :now - interval '30 days' + k * interval '1 hour'
        FROM generate_series(1, 20) AS p, generate_series(0, 399) AS k;
        INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,
                                     reserved_delta, on_hand_after, reserved_after,
                                     actor_staff_id, actor_api_client_id, reservation_id,
                                     reason, created_at)
        SELECT product_id, location_id, kind, on_hand_delta, reserved_delta,
               sum(on_hand_delta) OVER w, sum(reserved_delta) OVER w,
               staff, client, reservation_id, reason, created_at
        FROM bench_moves
        WINDOW w AS (PARTITION BY product_id ORDER BY created_at, kind
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ORDER BY created_at, product_id;
        DROP TABLE bench_moves"""),
    ("job_runs", """
        INSERT INTO job_runs (job, slot_at, started_at, finished_at, status, rows_affected,
                              detail, error, host)
        SELECT job, slot, slot + interval '50 ms', slot + interval '250 ms',
               CASE WHEN k % 97 = 0 THEN 'failed' ELSE 'ok' END, k % 40,
               CASE WHEN k % 97 = 0 THEN NULL ELSE '{"holds": ' || k % 40 || ', "units": ' || k % 90 || '}' END,
               CASE WHEN k % 97 = 0 THEN 'OperationalError: server closed the connection' END,
               'web-' || k % 3
        FROM (SELECT job, k, :now - k * step * interval '1 second' AS slot
              FROM (VALUES ('expire', 30), ('alerts', 60), ('reconcile', 600)) AS j(job, step),
                   generate_series(1, 2000) AS k) s"""),
    ("heartbeat", """
        INSERT INTO scheduler_heartbeats (name, beat_at, host, pid) VALUES ('scheduler', :now, 'web-0', 4242)"""),
    ("sequences", """
        SELECT setval('products_id_seq', 100000); SELECT setval('reservations_id_seq', 1000000);
        SELECT setval('carts_id_seq', 20000); SELECT setval('orders_id_seq', 30000)"""),
]

# After alert evaluation: some acknowledged, times spread, and a history of resolved ones.
ALERTS = [
    """UPDATE stock_alerts a SET status = 'acknowledged',
              acknowledged_at = a.opened_at + interval '10 minutes', acknowledged_by_id = 1 + a.id % 18
       WHERE a.id % 4 = 0""",
    """UPDATE stock_alerts SET opened_at = :now - (abs(hashint4(id)) % 10080) * interval '1 minute'""",
    """INSERT INTO stock_alerts (product_id, kind, status, opened_at, opened_available,
                                 resolved_at, resolved_by_id, resolution_note)
       SELECT 1 + abs(hashint4(i + 3)) % 100000,
              CASE WHEN i % 3 = 0 THEN 'OUT_OF_STOCK' ELSE 'LOW_STOCK' END, 'resolved',
              :now - interval '30 days' + (i % 40000) * interval '1 minute', i % 5,
              :now - interval '30 days' + (i % 40000) * interval '1 minute' + interval '6 hours',
              CASE WHEN i % 4 = 0 THEN 1 + i % 18 END,
              CASE WHEN i % 4 = 0 THEN 'reordered; supplier confirmed delivery'
                   ELSE 'Recovered automatically: 40 available, above the threshold of 10.' END
       FROM generate_series(1, 5000) AS i""",
]


def scaled(sql: str, products: int) -> str:
    """The build's SQL for `products` products instead of 100k (holds: ten per product, the
    newest 5% of them where the active ones are)."""
    sizes = {"1000000": 10 * products, "950000": 19 * products // 2, "100000": products}
    return re.sub(r"\b(1000000|950000|100000)\b", lambda m: str(sizes[m.group(1)]), sql)


# Loaded without their secondary indexes, which are rebuilt afterwards (much faster).
BULK_TABLES = ("reservations",)


@contextmanager
def indexes_dropped(conn, table: str):
    found = conn.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = :t AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"), {"t": table}).all()
    for name, _ in found:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in found:
        conn.execute(sa.text(definition))
    conn.execute(sa.text(f"ANALYZE {table}"))


def run_sql(conn, sql: str, params: dict) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(sa.text(statement), params)


def shape(products: int, locations: int) -> str:
    """What a built database is: the migrations it was built from, and its size."""
    return f"{schema_hash()}:{products}x{locations}"


def build(base_url: str, now: datetime, products: int, locations: int) -> None:
    admin = sa.create_engine(database_url(base_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(base_url, DB_NAME), "TESTING": True})
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        # The two people who sign in get real argon2 hashes (the others copy the manager's).
        for email, role in ((MANAGER, "manager"), (ADMIN, "admin")):
            services.create_staff(email, role=role, password=PASSWORD, now=now)
        for name in ("storefront-web", "storefront-app", "pos"):
            services.create_api_client(name, now=now)
        db.session.remove()
        params = {"now": now, "locations": locations}
        with db.engine.begin() as conn:
            add_stores(conn, locations, now - timedelta(days=400))
        for step, sql in BUILD:
            sql = scaled(sql, products)
            step_started = time.perf_counter()
            with db.engine.begin() as conn:
                if step in BULK_TABLES:
                    with indexes_dropped(conn, step):
                        run_sql(conn, sql, params)
                else:
                    run_sql(conn, sql, params)
            print(f"  {step:<13} {time.perf_counter() - step_started:6.1f}s", flush=True)
        step_started = time.perf_counter()
        changes = services.evaluate_alerts(now=now)
        with db.engine.begin() as conn:
            for sql in ALERTS:
                conn.execute(sa.text(scaled(sql, products)), params)
            conn.execute(sa.text("CREATE TABLE bench_built (built_at timestamptz NOT NULL,"
                                 " schema text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO bench_built VALUES (:now, :schema)"),
                         {**params, "schema": shape(products, locations)})
        print(f"  {'alerts':<13} {time.perf_counter() - step_started:6.1f}s "
              f"({changes.opened:,} opened)", flush=True)
        problems = services.check()
        db.session.remove()
        if problems:
            raise SystemExit("the built data breaks the invariants: " + "; ".join(problems[:5]))
        db.engine.dispose()
    engine = sa.create_engine(database_url(base_url, DB_NAME), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        counts = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM reservations),"
            " (SELECT count(*) FROM reservations WHERE status = 'active'),"
            " (SELECT count(*) FROM stock_movements), (SELECT count(*) FROM stock_alerts),"
            " (SELECT count(*) FROM locations), (SELECT count(*) FROM stock_levels)"
        )).one()
    engine.dispose()
    print(f"built in {time.perf_counter() - started:.0f}s: {counts[0]:,} products at "
          f"{counts[5]} locations ({counts[6]:,} stock levels), "
          f"{counts[1]:,} reservations ({counts[2]:,} active), {counts[3]:,} ledger rows, "
          f"{counts[4]:,} alerts; I1-I6 hold")


def schema_hash() -> str:
    migrations = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    digest = hashlib.sha256()
    for path in sorted(migrations.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def reusable(base_url: str, products: int, locations: int) -> bool:
    """The bench database exists and was built from the migrations as they are now, at
    this size."""
    admin = sa.create_engine(database_url(base_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
    admin.dispose()
    if not found:
        return False
    engine = sa.create_engine(database_url(base_url, DB_NAME))
    try:
        with engine.connect() as conn:
            built_from = conn.scalar(sa.text("SELECT schema FROM bench_built"))
    except sa.exc.DBAPIError:
        built_from = None
    engine.dispose()
    if built_from != shape(products, locations):
        print("the migrations or the size changed since the bench database was built:"
              " rebuilding")
        return False
    return True


def catch_up(base_url: str, now: datetime) -> None:
    """--reuse: move active holds' times forward so 'overdue' and 'expiring' mean what they did."""
    engine = sa.create_engine(database_url(base_url, DB_NAME))
    with engine.begin() as conn:
        shift = conn.scalar(sa.text("SELECT :now - built_at FROM bench_built"), {"now": now})
        conn.execute(sa.text(
            "UPDATE reservations SET created_at = created_at + :s, expires_at = expires_at + :s"
            " WHERE status = 'active'"), {"s": shift})
        conn.execute(sa.text("UPDATE bench_built SET built_at = :now"), {"now": now})
        conn.execute(sa.text("UPDATE scheduler_heartbeats SET beat_at = :now"), {"now": now})
    engine.dispose()
    print(f"reused {DB_NAME}: active holds moved forward by {shift}")


# --- measuring -----------------------------------------------------------------------------

class SqlMeter:
    """Counts statements and their time on the database cursor (execute + fetch into psycopg)."""

    def __init__(self, engine):
        self.statements = 0
        self.seconds = 0.0
        self.slowest: tuple[float, str] = (0.0, "")
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def reset(self):
        self.statements, self.seconds, self.slowest = 0, 0.0, (0.0, "")

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info["bench_started"].pop()
        self.statements += 1
        self.seconds += elapsed
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, " ".join(statement.split()))


@dataclass
class Result:
    page: str
    url: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    dbs: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    error: str | None = None

    def ms(self, values, q):
        values = sorted(values)
        if q == 50:
            return statistics.median(values) * 1000
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] * 1000


HTMX = {"HX-Request": "true"}


def timed(client, meter, method, url, headers=None, data=None):
    meter.reset()
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.open(url, method=method, headers=headers or {}, data=data)
    response.get_data()  # a streamed response (the CSV) runs its queries while it is read
    wall = time.perf_counter() - started
    return response, wall, time.process_time() - cpu_started


def measure(client, meter, page, urls, n, warmups, headers=None, method="GET", data=None,
            ok=(200,)) -> Result:
    """urls: a list cycled through, or a function of the request number giving (url, data)."""
    result = Result(page, urls[0] if isinstance(urls, list) else urls(0)[0])
    for i in range(warmups + n):
        if isinstance(urls, list):
            url, body_data = urls[i % len(urls)], data
        else:
            url, body_data = urls(i)
        response, wall, cpu = timed(client, meter, method, url, headers, body_data)
        if response.status_code not in ok:
            result.error = f"HTTP {response.status_code} on {url}"
            return result
        if i >= warmups:
            result.walls.append(wall)
            result.cpus.append(cpu)
            result.dbs.append(meter.seconds)
            result.statements.append(meter.statements)
            if meter.slowest[0] > result.slowest[0]:
                result.slowest = meter.slowest
    return result


def follow(client, url, pages, key="after") -> list[str]:
    """`url` and the next `pages - 1` keyset pages, found from each page's own next link."""
    link = re.compile(r'href="[^"]*?[?&;]' + key + r'=([^"&#]+)')
    urls = [url]
    while len(urls) < pages:
        body = client.get(urls[-1], headers=HTMX).get_data(as_text=True)
        found = link.findall(body)
        if not found:
            break
        base, _, query = urls[-1].partition("?")
        query = "&".join(p for p in query.split("&") if p and not p.startswith(key + "="))
        urls.append(f"{base}?{query + '&' if query else ''}{key}={unescape(found[-1])}")
    return urls


def sign_in(app, email):
    client = app.test_client()
    client.get("/sign-in")
    response = client.post("/sign-in", data={"email": email, "password": PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"sign-in as {email} failed: HTTP {response.status_code}")
    return client


def samples(base_url: str) -> dict:
    """Real SKUs, hold owners, ids for the write actions: picked once, outside the timing."""
    engine = sa.create_engine(database_url(base_url, DB_NAME))
    with engine.connect() as conn:
        def column(sql):
            return [row[0] for row in conn.execute(sa.text(sql))]

        def owners(owner):
            return column(f"SELECT DISTINCT {owner} FROM reservations"
                          f" WHERE status = 'active' AND {owner} IS NOT NULL LIMIT 10")

        found = {
            "skus": column("SELECT sku FROM products WHERE id % 997 = 0 ORDER BY id LIMIT 30"),
            "busy_skus": column("SELECT sku FROM products WHERE id <= 20 ORDER BY id"),
            "held_skus": column("""SELECT sku FROM products p WHERE EXISTS (SELECT 1 FROM
                reservations r WHERE r.product_id = p.id AND r.status = 'active') LIMIT 20"""),
            "carts": owners("cart_id"), "orders": owners("order_id"),
            "customers": owners("customer_id"), "sessions": owners("session_key"),
            # The inline adjust and count act at the default location: its figures.
            "products": [tuple(r) for r in conn.execute(sa.text(
                "SELECT p.id, s.on_hand FROM products p JOIN stock_levels s"
                " ON s.product_id = p.id AND s.location_id = 1"
                " WHERE p.id > (SELECT max(id) / 2 FROM products)"
                " AND s.on_hand - s.reserved > 20 AND p.is_active ORDER BY p.id LIMIT 200"))],
            "locations": column("SELECT code FROM locations ORDER BY priority, id"),
            "holds": column("SELECT id FROM reservations WHERE status = 'active'"
                            " AND expires_at > now() ORDER BY id DESC LIMIT 200"),
            "alerts": column("SELECT id FROM stock_alerts WHERE status = 'open'"
                             " ORDER BY id DESC LIMIT 200"),
        }
    engine.dispose()
    return found


def pages(client, admin_client, s: dict) -> list[tuple]:
    """(page, client, urls, headers) for every page and main partial."""
    terms = ["navy", "TSH-BLK", "cotton mug", "00421", "linen", "BAG-RED-01", "vintage wool",
             "ceramic", "zzqx", "JKT", "socks navy wool", "tsh-nvy 004", "mug Ceramic m"]
    stock_pages = follow(client, "/stock", 10)
    available_pages = follow(client, "/stock?sort=available&dir=desc", 10)
    on_hand_pages = follow(client, "/stock?sort=on_hand", 5)
    name_pages = follow(client, "/stock?sort=name&filter=low", 5)
    low_pages = follow(client, "/stock?filter=low", 10)
    holds_pages = follow(client, "/holds", 10)
    stuck_pages = follow(client, "/holds?filter=stuck", 5)
    activity_pages = follow(client, "/activity", 10)
    resolved_pages = follow(client, "/alerts?tab=resolved", 5)
    owners = ([f"cart {c}" for c in s["carts"]] + [f"order:{o}" for o in s["orders"]]
              + [f"customer {c}" for c in s["customers"]] + s["sessions"][:5])
    sku = s["skus"]
    product_urls = [f"/products/{x}" for x in sku[:10] + s["busy_skus"][:5]]
    ledger_urls = []
    for x in s["busy_skus"][:5]:
        ledger_urls += follow(client, f"/products/{x}", 4, key="before")[1:]
    return [
        ("sign-in form", client.application.test_client(), ["/sign-in?next=/stock"], {}),
        ("overview", client, ["/"], {}),
        ("overview tiles", client, ["/overview/tiles"], HTMX),
        ("nav alert badge", client, ["/overview/alert-badge"], HTMX),
        ("stock", client, ["/stock"], {}),
        ("stock row panel", client, [f"/stock/{p}/change" for p, _ in s["products"][:20]], HTMX),
        ("stock pages (keyset)", client, stock_pages, HTMX),
        ("stock search", client, [f"/stock?q={t.replace(' ', '+')}" for t in terms], HTMX),
        ("stock search 2 chars", client, ["/stock?q=na", "/stock?q=ts", "/stock?q=42"], HTMX),
        ("stock low", client, low_pages, HTMX),
        ("stock out", client, ["/stock?filter=out"], HTMX),
        ("stock inactive", client, ["/stock?filter=inactive"], HTMX),
        ("stock low by name", client, name_pages, HTMX),
        ("stock by available", client, available_pages, HTMX),
        ("stock by on hand", client, on_hand_pages, HTMX),
        ("stock search+low", client,
         [f"/stock?q={t}&filter=low" for t in ("navy", "mug", "TSH", "wool+hat")], HTMX),
        ("product", client, product_urls, {}),
        ("product ledger pages", client, ledger_urls or product_urls, HTMX),
        ("holds", client, ["/holds"], {}),
        ("holds pages (keyset)", client, holds_pages, HTMX),
        ("hold row forms", client, [f"/holds/{h}/actions" for h in s["holds"][-20:]], HTMX),
        ("holds expiring", client, ["/holds?filter=expiring"], HTMX),
        ("holds stuck", client, stuck_pages, HTMX),
        ("holds by sku", client, [f"/holds?sku={x}" for x in s["held_skus"]], HTMX),
        ("holds by owner", client, [f"/holds?owner={o.replace(' ', '+')}" for o in owners], HTMX),
        ("alerts open", client, ["/alerts", "/alerts?tab=open&kind=OUT_OF_STOCK"], {}),
        ("alerts acknowledged", client, ["/alerts?tab=acknowledged"], HTMX),
        ("alerts resolved (keyset)", client, resolved_pages, HTMX),
        ("activity", client, ["/activity"], {}),
        ("activity pages (keyset)", client, activity_pages, HTMX),
        ("activity by sku", client, [f"/activity?sku={x}" for x in sku[:10]], HTMX),
        ("activity by kind", client, ["/activity?kind=adjust", "/activity?kind=count",
                                      "/activity?kind=expire", "/activity?kind=repair"], HTMX),
        ("activity by actor", client, ["/activity?actor=staff:3", "/activity?actor=system",
                                       "/activity?actor=api:1"], HTMX),
        ("activity by dates", client, ["/activity?from=2026-01-01&to=2026-01-31"], HTMX),
        ("activity.csv by sku", client, [f"/activity.csv?sku={x}" for x in s["busy_skus"][:5]], {}),
        ("jobs", client, ["/jobs"], {}),
        ("reconcile drift", client, ["/jobs/reconcile/drift"], HTMX),
        ("admin staff", admin_client, ["/admin/staff"], {}),
        ("admin api clients", admin_client, ["/admin/api-clients"], {}),
        *location_pages(client, admin_client, s),
    ]


def location_pages(client, admin_client, s: dict) -> list[tuple]:
    """The pages of one location (the stores and warehouses after MAIN), transfers and the
    locations admin page."""
    codes = s["locations"][1:] or s["locations"]
    return [
        ("stock at a location", client, [f"/stock?location={c}" for c in codes], {}),
        ("stock at a location, low", client,
         [f"/stock?location={c}&filter=low" for c in codes], HTMX),
        ("stock at a location, search", client,
         [f"/stock?location={c}&q=navy" for c in codes], HTMX),
        ("holds at a location", client, [f"/holds?location={c}" for c in codes], HTMX),
        ("transfers", client, ["/transfers", "/transfers?status=shipped"], {}),
        ("admin locations", admin_client, ["/admin/locations"], {}),
    ]


def writes(client, s: dict) -> list[tuple]:
    """(page, url-function, ok statuses): each request a different product, hold or alert,
    each with its own submit token (claimed and stored with the answer, as from a form)."""
    products, holds, alerts = s["products"], s["holds"], s["alerts"]

    def once(data: dict) -> dict:
        return {**data, "submit_token": secrets.token_urlsafe(24)}

    def adjust(i):
        product_id, _ = products[i % len(products)]
        return f"/stock/{product_id}/adjust", once({"delta": "1" if i % 2 == 0 else "-1",
                                                    "reason": "bench: correction", "next": "/stock"})

    def count(i):
        product_id, on_hand = products[(i + 100) % len(products)]
        # Counting what is there: no change (the row and the ledger note still written).
        return f"/stock/{product_id}/count", once({"counted": str(on_hand), "expected": str(on_hand),
                                                   "note": "bench", "next": "/stock"})

    def release(i):
        return f"/holds/{holds[i % len(holds)]}/release", once({"reason": "bench: customer called"})

    def acknowledge(i):
        return f"/alerts/{alerts[i % len(alerts)]}/acknowledge", once({})

    return [
        ("POST adjust (panel)", adjust, (200,)),
        ("POST count (panel)", count, (200, 409)),
        ("POST release hold", release, (200, 409)),
        ("POST acknowledge alert", acknowledge, (200, 409)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"))
    parser.add_argument("--reuse", action="store_true", help="keep the database if it exists")
    parser.add_argument("-n", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmups", type=int, default=5)
    parser.add_argument("--only", help="only pages whose name contains this")
    parser.add_argument("--no-writes", action="store_true")
    parser.add_argument("--products", type=int, default=100_000,
                        help="products to build (holds: ten per product)")
    parser.add_argument("--locations", type=int, default=5,
                        help="locations: MAIN and N-1 stores, each product stocked at all")
    args = parser.parse_args()
    products, locations = max(100, args.products), max(1, args.locations)

    now = datetime.now(timezone.utc)
    if args.reuse and reusable(args.url, products, locations):
        catch_up(args.url, now)
    else:
        build(args.url, now, products, locations)

    s = samples(args.url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(args.url, DB_NAME),
                      "TESTING": True, "WTF_CSRF_ENABLED": False})
    with app.app_context():
        meter = SqlMeter(db.engine)
    client, admin_client = sign_in(app, MANAGER), sign_in(app, ADMIN)

    results = []
    for page, who, urls, headers in pages(client, admin_client, s):
        if args.only and args.only not in page:
            continue
        results.append(measure(who, meter, page, urls, args.n, args.warmups, headers))
    if not args.no_writes:
        for page, url_of, ok in writes(client, s):
            if args.only and args.only not in page:
                continue
            results.append(measure(client, meter, page, url_of, min(args.n, 40), 2, HTMX,
                                   method="POST", ok=ok))
    report(results, args.n)


def report(results: list[Result], n: int) -> None:
    load = os.getloadavg()
    print(f"\n{n} timed requests per page (writes: up to 40), server side (Flask test client),"
          f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores.")
    print("db = time on the database cursor for the statements the page ran (the bare SQL);"
          " other = page - db per request (Flask, ORM, Jinja); app cpu = this process's CPU"
          " time per request (what the page costs the web worker, whatever the load).\n")
    print("| page | URL | statements | db p50 ms | db p95 ms | other p50 ms | app cpu p50 ms"
          " | page p50 ms | page p95 ms | p95 <= 50 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    misses = []
    for r in results:
        if r.error or not r.walls:
            print(f"| {r.page} | `{r.url}` | | | | | | | | ERROR: {r.error} |")
            continue
        others = [w - d for w, d in zip(r.walls, r.dbs)]
        p95 = r.ms(r.walls, 95)
        verdict = "ok" if p95 <= TARGET_MS else "MISS"
        if verdict == "MISS":
            misses.append(r)
        statements = statistics.median(r.statements)
        print(f"| {r.page} | `{r.url[:60]}` | {statements:g} | {r.ms(r.dbs, 50):.1f} | "
              f"{r.ms(r.dbs, 95):.1f} | {r.ms(others, 50):.1f} | {r.ms(r.cpus, 50):.1f} | "
              f"{r.ms(r.walls, 50):.1f} | {p95:.1f} | {verdict} |")
    for r in misses:
        print(f"\nMISS {r.page}: slowest statement {r.slowest[0] * 1000:.1f} ms:"
              f" {r.slowest[1][:400]}")


if __name__ == "__main__":
    main()
