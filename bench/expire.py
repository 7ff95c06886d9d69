"""Benchmark: expiring overdue holds (SPEC §11) and reserving while a sweep runs.

Mode 1 (default): 100k overdue holds among 1M reservation rows. Times
  (a) the service sweep `services.expire_due(now, batch=2000)`,
  (b) the same work as bare set-based SQL, in batches of 2000 like the service: one
      statement per batch (claim with SKIP LOCKED, UPDATE reservations ... RETURNING,
      aggregated UPDATE products, INSERT the per-hold ledger rows with their running figures),
  (c) the legacy way, one ORM update per hold (load the hold, lock and update its product,
      mark the hold, write its ledger row, commit), timed on a sample and extrapolated,
and prints them against the targets: service <= 2x bare, >= 20x faster than per-hold.

Mode 2 (--during-reserves): a 50k backlog swept while 16 threads reserve through
`services.reserve`, half on products that have overdue holds in the backlog (the sweep
locks them, one batch at a time) and half on others; reserve latency during and outside
the sweep, and the longest batch (the longest any product stays locked by the sweep).

Each mode drops and recreates the database `stockroom_bench_expire`, migrates it, and
builds the data with bulk SQL so that `flask check` is clean: every product has a level at
each of 5 locations (MAIN and four stores), the holds spread over them. Every measurement runs on a
fresh copy of it (CREATE DATABASE ... TEMPLATE), so each starts from the same state.

    .venv/bin/python bench/expire.py [--holds 100000 --rows 1000000 --products 20000]
    .venv/bin/python bench/expire.py --during-reserves [--holds 50000 --threads 16]
Base URL from BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1/postgres).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from bench.stores import add_stores  # noqa: E402
from dashboard import create_app, services  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.models import Product, Reservation, StockLevel, StockMovement  # noqa: E402
from dashboard.services import Owner  # noqa: E402

DB_NAME = "stockroom_bench_expire"
COPY_NAME = "stockroom_bench_expire_run"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
BATCH = 2000
LOCATIONS = 5  # MAIN (id 1, made by migration 0009) and stores 2..5


def url(name: str) -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    return sa.engine.make_url(base).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)


ADMIN = sa.create_engine(url("postgres"), isolation_level="AUTOCOMMIT")


def admin(sql: str) -> None:
    with ADMIN.connect() as conn:
        conn.execute(sa.text(sql))


def make_app(name: str, **config):
    return create_app({"SQLALCHEMY_DATABASE_URI": url(name), "TESTING": True, **config})


def fresh_copy() -> None:
    admin(f'DROP DATABASE IF EXISTS "{COPY_NAME}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{COPY_NAME}" TEMPLATE "{DB_NAME}" STRATEGY FILE_COPY')


def build(products: int, rows: int, holds: int) -> None:
    """Products, `rows` reservations of which `holds` are active and overdue, and a ledger."""
    admin(f'DROP DATABASE IF EXISTS "{COPY_NAME}" WITH (FORCE)')
    admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{DB_NAME}"')
    app = make_app(DB_NAME)
    every = rows // holds  # every n-th reservation is an overdue active hold
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        params = {"now": NOW, "p": products, "n": rows, "every": every, "l": LOCATIONS}
        add_stores(db.session, LOCATIONS, NOW)
        for sql in (
            """INSERT INTO products (id, sku, name, price, on_hand, reserved, low_stock_threshold,
                                     is_active, alert_muted, created_at, updated_at)
               SELECT i, 'SKU-' || lpad(i::text, 6, '0'), 'Product ' || i, 9.99, 0, 0, 10,
                      true, false, :now - interval '30 days', :now - interval '30 days'
               FROM generate_series(1, :p) AS i""",
            # Ended holds outnumber active ones ~9:1, as in a shop that has run for a while.
            """INSERT INTO reservations (id, product_id, location_id, quantity, session_key,
                                         status, created_at, expires_at, ended_at, end_reason)
               SELECT i, 1 + abs(hashint4(i)) % :p, 1 + abs(hashint4(i + 7)) % :l, 1 + i % 3,
                      'bench-' || (i % 50000),
                      CASE WHEN i % :every = 0 THEN 'active'
                           ELSE (ARRAY['released', 'expired', 'committed'])[1 + i % 3] END,
                      :now - interval '2 hours' - (i % 86400) * interval '1 second',
                      :now - interval '1 hour' - (i % 3600) * interval '1 second',
                      CASE WHEN i % :every = 0 THEN NULL ELSE :now - interval '1 hour' END,
                      CASE WHEN i % :every = 0 THEN NULL ELSE 'bench history' END
               FROM generate_series(1, :n) AS i""",
            # Each level: its active holds and 20 units free; the products' totals their sums.
            """INSERT INTO stock_levels (product_id, location_id, on_hand, reserved,
                                         product_threshold, product_is_active)
               SELECT p.id, l.id, coalesce(h.held, 0) + 20, coalesce(h.held, 0),
                      p.low_stock_threshold, p.is_active
               FROM products p CROSS JOIN locations l
               LEFT JOIN (SELECT product_id, location_id, sum(quantity) AS held
                          FROM reservations WHERE status = 'active'
                          GROUP BY product_id, location_id) h
                 ON h.product_id = p.id AND h.location_id = l.id""",
            """UPDATE products p SET reserved = s.reserved, on_hand = s.on_hand
               FROM (SELECT product_id, sum(on_hand) AS on_hand, sum(reserved) AS reserved
                     FROM stock_levels GROUP BY product_id) s
               WHERE p.id = s.product_id""",
            # Ledger: each level's stock arrived, each active hold was reserved. (Ended
            # holds' reserve/end pairs net to zero and are left out to keep the build short.)
            """INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,
                                            reserved_delta, on_hand_after, reserved_after,
                                            reason, created_at)
               SELECT product_id, location_id, 'receive', on_hand, 0,
                      sum(on_hand) OVER (PARTITION BY product_id ORDER BY location_id), 0,
                      'bench stock',
                      :now - interval '30 days'
               FROM stock_levels ORDER BY product_id, location_id""",
            """INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,
                                            reserved_delta, on_hand_after, reserved_after,
                                            reservation_id, reason, created_at)
               SELECT r.product_id, r.location_id, 'reserve', 0, r.quantity,
                      p.on_hand, p.reserved, r.id, 'bench hold', r.created_at
               FROM reservations r JOIN products p ON p.id = r.product_id
               WHERE r.status = 'active' ORDER BY r.id""",
            "SELECT setval('products_id_seq', :p)",
            "SELECT setval('reservations_id_seq', :n)",
        ):
            db.session.execute(sa.text(sql), params)
        db.session.commit()
        problems = services.check()
        db.session.remove()
        db.engine.dispose()
    engine = sa.create_engine(url(DB_NAME), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    if problems:
        raise SystemExit("built data is not clean: " + "; ".join(problems[:5]))
    print(f"built {products:,} products, {rows:,} reservations ({holds:,} overdue) "
          f"in {time.perf_counter() - started:.1f}s; check clean")


def service_sweep() -> tuple[float, int, list[str]]:
    fresh_copy()
    app = make_app(COPY_NAME)
    with app.app_context():
        started = time.perf_counter()
        result = services.expire_due(NOW, batch=BATCH)
        elapsed = time.perf_counter() - started
        problems = services.check()
        db.session.remove()
        db.engine.dispose()
    return elapsed, result.holds, problems


BARE_BATCH = """
WITH claimed AS (
    SELECT id FROM reservations
    WHERE status = 'active' AND expires_at <= :now
    ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
), ended AS (
    UPDATE reservations r
    SET status = 'expired', ended_at = :now, end_reason = 'expired: not completed in time'
    FROM claimed WHERE r.id = claimed.id AND r.status = 'active'
    RETURNING r.id, r.product_id, r.location_id, r.quantity, r.order_id
), level_sums AS (
    SELECT product_id, location_id, sum(quantity) AS quantity FROM ended
    GROUP BY product_id, location_id
), levels AS (
    UPDATE stock_levels s SET reserved = s.reserved - level_sums.quantity
    FROM level_sums
    WHERE s.product_id = level_sums.product_id AND s.location_id = level_sums.location_id
    RETURNING s.product_id
), sums AS (
    SELECT product_id, sum(quantity) AS quantity FROM ended GROUP BY product_id
), counters AS (
    UPDATE products p SET reserved = p.reserved - sums.quantity, updated_at = :now
    FROM sums WHERE p.id = sums.product_id
    RETURNING p.id, p.on_hand, p.reserved
)
INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,
                             on_hand_after, reserved_after, reservation_id, order_id, reason,
                             created_at)
SELECT e.product_id, e.location_id, 'expire', 0, -e.quantity, c.on_hand,
       c.reserved + coalesce(sum(e.quantity) OVER (
           PARTITION BY e.product_id ORDER BY e.id DESC
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
       e.id, e.order_id, 'hold expired', :now
FROM ended e JOIN counters c ON c.id = e.product_id
ORDER BY e.id
"""


def bare_sweep() -> tuple[float, int, list[str]]:
    fresh_copy()
    engine = sa.create_engine(url(COPY_NAME))
    total = 0
    started = time.perf_counter()
    with engine.connect() as conn:
        while True:
            with conn.begin():
                n = conn.execute(sa.text(BARE_BATCH), {"now": NOW, "batch": BATCH}).rowcount
            total += n
            if n < BATCH:
                break
    elapsed = time.perf_counter() - started
    engine.dispose()
    app = make_app(COPY_NAME)
    with app.app_context():
        problems = services.check()
        db.session.remove()
        db.engine.dispose()
    return elapsed, total, problems


def per_hold_sweep(sample: int) -> tuple[float, int]:
    """The legacy way: a Python loop, one hold and one product per transaction."""
    fresh_copy()
    app = make_app(COPY_NAME)
    with app.app_context():
        session = db.session
        started = time.perf_counter()
        ids = session.scalars(
            sa.select(Reservation.id)
            .where(Reservation.status == "active", Reservation.expires_at <= NOW)
            .order_by(Reservation.id).limit(sample)
        ).all()
        for hold_id in ids:
            hold = session.get(Reservation, hold_id, with_for_update=True)
            product = session.get(Product, hold.product_id, with_for_update=True)
            level = session.get(StockLevel, (hold.product_id, hold.location_id),
                                with_for_update=True)
            level.reserved -= hold.quantity
            product.reserved -= hold.quantity
            product.updated_at = NOW
            hold.status, hold.ended_at = "expired", NOW
            hold.end_reason = "expired: not completed in time"
            session.add(StockMovement(
                product_id=product.id, location_id=hold.location_id, kind="expire",
                on_hand_delta=0,
                reserved_delta=-hold.quantity, on_hand_after=product.on_hand,
                reserved_after=product.reserved, reservation_id=hold.id, reason="hold expired",
                created_at=NOW,
            ))
            session.commit()
        elapsed = time.perf_counter() - started
        session.remove()
        db.engine.dispose()
    return elapsed, len(ids)


def mode_sweep(args) -> None:
    build(args.products, args.rows, args.holds)
    service_s, service_n, service_problems = service_sweep()
    bare_s, bare_n, bare_problems = bare_sweep()
    sample_s, sample_n = per_hold_sweep(args.sample)
    per_hold_s = sample_s * args.holds / sample_n
    admin(f'DROP DATABASE IF EXISTS "{COPY_NAME}" WITH (FORCE)')

    print()
    print(f"Expire {args.holds:,} overdue holds among {args.rows:,} reservations, "
          f"{args.products:,} products, batches of {BATCH} (PostgreSQL)")
    print(f"{'method':<58} {'seconds':>8} {'holds/s':>9} {'vs bare':>8}")
    rows = [
        ("(a) services.expire_due", service_s, service_n),
        ("(b) bare set-based SQL, one statement per batch", bare_s, bare_n),
        (f"(c) ORM update per hold ({sample_n:,} timed, x{args.holds / sample_n:.0f})",
         per_hold_s, args.holds),
    ]
    for name, seconds, n in rows:
        print(f"{name:<58} {seconds:>8.2f} {n / seconds:>9,.0f} {seconds / bare_s:>7.2f}x")
    ratio, speedup = service_s / bare_s, per_hold_s / service_s
    print(f"service / bare      = {ratio:.2f}x   target <= 2x   "
          f"{'met' if ratio <= 2 else 'MISSED'}")
    print(f"per-hold / service  = {speedup:.1f}x   target >= 20x  "
          f"{'met' if speedup >= 20 else 'MISSED'}")
    print(f"holds expired: service {service_n:,}, bare {bare_n:,}; check after service: "
          f"{'clean' if not service_problems else service_problems[:3]}, after bare: "
          f"{'clean' if not bare_problems else bare_problems[:3]}")


def mode_during_reserves(args) -> None:
    build(args.products, args.rows, args.holds)
    fresh_copy()
    app = make_app(COPY_NAME, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": args.threads + 4})
    with app.app_context():
        # "Hot" products have overdue holds in the backlog: the sweep locks them batch by batch.
        hot = db.session.scalars(
            sa.select(Reservation.product_id).where(Reservation.status == "active")
            .group_by(Reservation.product_id).order_by(sa.func.max(Reservation.id).desc())
            .limit(args.threads)
        ).all()
        busy = set(db.session.scalars(
            sa.select(Reservation.product_id).where(Reservation.status == "active").distinct()))
        other = [pid for pid in range(1, args.products + 1) if pid not in busy][:args.threads]
        if len(other) < args.threads:
            other = hot  # every product has a hold: all reserves contend
        # Restocked at MAIN, where holds that name no location go first.
        db.session.execute(sa.text("UPDATE products SET on_hand = on_hand + 1000000"))
        db.session.execute(sa.text(
            "UPDATE stock_levels SET on_hand = on_hand + 1000000 WHERE location_id = 1"))
        db.session.execute(sa.text(
            "INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,"
            " reserved_delta, on_hand_after, reserved_after, reason, created_at)"
            " SELECT id, 1, 'receive', 1000000, 0, on_hand, reserved, 'bench restock', :now"
            " FROM products"), {"now": NOW})
        db.session.commit()
        db.session.remove()

    samples: list[tuple[float, float, str]] = []  # (started, seconds, kind)
    stop = threading.Event()
    lock = threading.Lock()

    def reserver(index: int) -> None:
        targets = [("hot", hot[index % len(hot)]), ("other", other[index % len(other)])]
        n = 0
        with app.app_context():
            while not stop.is_set():
                kind, product_id = targets[n % 2]
                n += 1
                begun = time.perf_counter()
                services.reserve(product_id, 1, Owner(session_key=f"t{index}"),
                                 ttl_seconds=900, now=datetime.now(timezone.utc))
                took = time.perf_counter() - begun
                with lock:
                    samples.append((begun, took, kind))
            db.session.remove()

    threads = [threading.Thread(target=reserver, args=(i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    time.sleep(args.quiet)  # reserves alone
    batch_times: list[float] = []
    with app.app_context():
        sweep_start = time.perf_counter()
        total = 0
        while True:
            begun = time.perf_counter()
            result = services.expire_due(NOW, batch=BATCH, max_batches=1)
            batch_times.append(time.perf_counter() - begun)
            total += result.holds
            if result.holds < BATCH:
                break
        sweep_end = time.perf_counter()
        db.session.remove()
    time.sleep(args.quiet)  # reserves alone again
    stop.set()
    for t in threads:
        t.join()
    with app.app_context():
        problems = services.check()
        db.session.remove()
        db.engine.dispose()
    admin(f'DROP DATABASE IF EXISTS "{COPY_NAME}" WITH (FORCE)')

    def row(label, chosen):
        ms = sorted(s * 1000 for s in chosen)
        if not ms:
            return f"{label:<40} {'-':>7}"
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return (f"{label:<40} {len(ms):>7,} {statistics.median(ms):>8.1f} {p99:>8.1f} "
                f"{ms[-1]:>8.1f}")

    during = [s for s in samples if sweep_start <= s[0] <= sweep_end]
    outside = [s for s in samples if not sweep_start <= s[0] <= sweep_end]
    print()
    print(f"Sweep {total:,} overdue holds (batches of {BATCH}) while {args.threads} threads "
          f"reserve through services.reserve (PostgreSQL, one Python process)")
    print(f"sweep: {sweep_end - sweep_start:.2f}s in {len(batch_times)} batches; "
          f"longest batch (longest product lock) {max(batch_times) * 1000:.0f} ms, "
          f"median batch {statistics.median(batch_times) * 1000:.0f} ms")
    print(f"{'reserve latency':<40} {'calls':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, chosen in (
        ("outside the sweep, all", outside),
        ("during the sweep, all", during),
        ("during, products in the backlog", [s for s in during if s[2] == "hot"]),
        ("during, other products", [s for s in during if s[2] == "other"]),
    ):
        print(row(label, [s[1] for s in chosen]))
    rate_out = len(outside) / (2 * args.quiet)
    rate_in = len(during) / max(sweep_end - sweep_start, 1e-9)
    print(f"throughput: {rate_out:,.0f} reserves/s outside, {rate_in:,.0f} reserves/s during")
    print(f"check after: {'clean' if not problems else problems[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--during-reserves", action="store_true")
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--holds", type=int)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--quiet", type=float, default=3.0, help="seconds of reserves alone")
    args = parser.parse_args()
    if args.during_reserves:
        args.holds = args.holds or 50_000
        args.rows = args.rows or 200_000
        mode_during_reserves(args)
    else:
        args.holds = args.holds or 100_000
        args.rows = args.rows or 1_000_000
        mode_sweep(args)


if __name__ == "__main__":
    main()
