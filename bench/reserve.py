"""Benchmark: reserving through the service layer vs its SQL under pgbench (SPEC §11, issue 12).

For 1/4/16/64 concurrent clients, on one hot product and spread over 10k products, each
stocked at --locations locations (default 5: MAIN and four more) and every reserve naming one
of them at random, in one run:
  (a) service  `services.reserve(sku, 1, owner, ttl, location=code)`: each client a thread with its own app
               context (its own session and connection), spread over --procs processes so
               the GIL of one process is not the ceiling on a multi-core host;
  (b) multi    pgbench running the statements the service sent before issue 12 (UPDATE the
               product, UPDATE its level there, INSERT hold, INSERT ledger line, SELECT
               alert) between BEGIN and COMMIT;
  (c) one      pgbench running the service's one statement (holds_pg.RESERVE_BY_SKU, its
               very text) as the service sends it: alone, its own transaction (a take
               that leaves the product above its threshold: transaction.run_alone);
and a/c, which the issue wants >= 60% in every cell.
After every cell `services.check()` must be clean (I1-I6) and the holds must add up to the
successes; `oversold` counts units held beyond stock plus any invariant violation.
A last row drains a scarce product (500 units spread over the locations, 64 clients, holds
placed by allocation) and must end at exactly 500.

It drops and recreates the database `stockroom_bench_reserve`, migrates it with
`flask_migrate.upgrade()`, and resets holds and ledger between cells so each starts equal.

    .venv/bin/python bench/reserve.py [--seconds 4] [--procs 2] [--clients 1,4,16,64]
                                      [--locations 5]
pgbench from $PGBENCH (default /usr/lib/postgresql/15/bin/pgbench).
Base URL from BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1/postgres).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from bench.stores import add_stores  # noqa: E402
from dashboard import create_app, services  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.services import Owner  # noqa: E402
from dashboard.services import holds_pg  # noqa: E402
from dashboard.services.errors import InsufficientStock  # noqa: E402

DB_NAME = "stockroom_bench_reserve"
PRODUCTS = 10_000
STOCK = 1_000_000_000  # the hot product never runs out during a timed cell (its total)
SCARCE = 500
TTL = 3600
LOCATIONS = 5  # --locations: MAIN (id 1, made by migration 0009) and ids 2..N


def codes() -> list[str]:
    return ["MAIN"] + [f"STORE-{i}" for i in range(2, LOCATIONS + 1)]


def url(name: str, driver: str = "postgresql+psycopg") -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    return sa.engine.make_url(base).set(drivername=driver, database=name) \
        .render_as_string(hide_password=False)


def make_app(pool: int):
    return create_app({
        "SQLALCHEMY_DATABASE_URI": url(DB_NAME), "TESTING": True,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": pool + 2, "max_overflow": 4,
                                      "pool_pre_ping": True},
    })


def build() -> None:
    with psycopg.connect(url("postgres", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    app = make_app(1)
    with app.app_context():
        upgrade()
        db.session.execute(sa.text(
            "INSERT INTO products (sku, name, price, on_hand, reserved, low_stock_threshold,"
            " is_active, alert_muted, created_at, updated_at)"
            " SELECT 'SKU-' || lpad(g::text, 5, '0'), 'Product ' || g, 9.99, :stock, 0, 10,"
            " true, false, now(), now() FROM generate_series(1, :n) g"
        ), {"stock": STOCK, "n": PRODUCTS})
        add_stores(db.session, LOCATIONS, datetime.now(timezone.utc))
        db.session.execute(sa.text(
            "INSERT INTO stock_levels (product_id, location_id, on_hand, reserved,"
            " product_threshold, product_is_active)"
            " SELECT p.id, l.id, 0, 0, p.low_stock_threshold, p.is_active"
            " FROM products p, locations l"))
        db.session.commit()
        db.engine.dispose()
    reset()


def reset(scarce_sku: str | None = None) -> None:
    """Back to the opening state: no holds, no alerts, one opening ledger row per product."""
    with psycopg.connect(url(DB_NAME, "postgresql")) as conn:
        conn.execute("TRUNCATE reservations, stock_movements, stock_alerts, notification_events RESTART IDENTITY CASCADE")
        # The total spread evenly over the locations (MAIN takes the remainder).
        conn.execute("UPDATE products SET reserved = 0, on_hand = %s", (STOCK,))
        if scarce_sku:
            conn.execute("UPDATE products SET on_hand = %s WHERE sku = %s", (SCARCE, scarce_sku))
        conn.execute(
            "UPDATE stock_levels s SET reserved = 0, on_hand = p.on_hand / %(n)s"
            " + CASE WHEN s.location_id = 1 THEN p.on_hand %% %(n)s ELSE 0 END"
            " FROM products p WHERE p.id = s.product_id", {"n": LOCATIONS})
        conn.execute(
            "INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,"
            " reserved_delta, on_hand_after, reserved_after, reason, created_at)"
            " SELECT product_id, location_id, 'receive', on_hand, 0,"
            " sum(on_hand) OVER (PARTITION BY product_id ORDER BY location_id), 0,"
            " 'opening stock', now() FROM stock_levels WHERE on_hand > 0"
            " ORDER BY product_id, location_id"
        )
    with psycopg.connect(url(DB_NAME, "postgresql"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE products, stock_levels, reservations, stock_movements")


# --- the clients ---------------------------------------------------------------------------


def _pick(target: str, rng: random.Random) -> int:
    return 1 if target == "hot" else rng.randint(1, PRODUCTS)


def _service_client(app, target, start_at, stop_at, seed, out, drain=False):
    rng = random.Random(seed)
    owner = Owner(session_key=f"bench-{seed}")
    places = codes()
    latencies, ok, refused = [], 0, 0
    with app.app_context():
        services.find_product("SKU-00001")  # connect before the clock starts
        db.session.commit()
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            t0 = time.perf_counter()
            sku = f"SKU-{_pick(target, rng):05d}"
            try:
                # A scarce product is drained by allocation; else each names a location.
                services.reserve(sku, 1, owner, TTL, now=datetime.now(timezone.utc),
                                 location=None if drain else rng.choice(places))
                ok += 1
            except InsufficientStock:
                refused += 1
                if drain:
                    break
            latencies.append(time.perf_counter() - t0)
        db.session.remove()
    out.append((ok, refused, latencies))


PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
_PICK = {"hot": "\\set pid 1", "spread": f"\\set pid random(1, {PRODUCTS})"}
_PLACE = "\\set loc random(1, {locations})"  # the location's id
_SKU = "'SKU-' || lpad(CAST(:pid AS text), 5, '0')"
# The service's statements before issue 12, as pgbench runs them: take, hold, ledger line,
# the alert read, COMMIT (each a round trip, the product locked across all of them).
MULTI = f"""BEGIN;
UPDATE products SET reserved = reserved + 1, updated_at = now()
 WHERE sku = {_SKU} AND is_active AND on_hand - reserved >= 1
 RETURNING id AS product_id, on_hand, reserved, low_stock_threshold, is_active, alert_muted
\\gset
UPDATE stock_levels SET reserved = reserved + 1
 WHERE product_id = :product_id AND location_id = :loc AND on_hand - reserved >= 1;
INSERT INTO reservations (product_id, location_id, quantity, session_key, status, created_at,
 expires_at)
 VALUES (:product_id, :loc, 1, 'bench', 'active', now(), now() + interval '{TTL} seconds')
 RETURNING id AS hold_id \\gset
INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,
 on_hand_after, reserved_after, reservation_id, reason, created_at)
 VALUES (:product_id, :loc, 'reserve', 0, 1, :on_hand, :reserved, :hold_id,
 'held for session bench', now());
SELECT id, kind, status FROM stock_alerts WHERE product_id = :product_id
 AND status IN ('open', 'acknowledged') LIMIT 1;
END;
"""
# The service's one statement (holds_pg.RESERVE_BY_SKU, the very text), alone as the
# service sends it: no BEGIN, no COMMIT (PostgreSQL commits it by itself).
_VALUES = {"key": _SKU, "quantity": "1", "now": "now()",
           "expires_at": f"now() + interval '{TTL} seconds'", "client": "NULL",
           "staff": "NULL", "session_key": "'bench'", "customer_id": "NULL", "cart_id": "NULL",
           "order_id": "NULL", "reason": "'held for session bench'", "location": "NULL",
           # The service names the location by its code (bench/stores.py), as the API does.
           "location_code": "CASE WHEN :loc = 1 THEN 'MAIN' ELSE 'STORE-' || :loc END"}
ONE = re.sub(r"(?<!:):(\w+)", lambda m: _VALUES[m.group(1)],
             holds_pg.RESERVE_BY_SKU.text).strip() + ";\n"


def _pgbench(script: str, target: str, clients: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(_PICK[target] + "\n" + _PLACE.format(locations=LOCATIONS) + "\n" + script)
    try:
        done = subprocess.run(
            [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 4)),
             "-T", str(max(1, round(seconds))), "-f", f.name, url(DB_NAME, "postgresql")],
            capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    out = done.stdout
    ok = int(re.search(r"actually processed: (\d+)", out).group(1))
    tps = float(re.search(r"tps = ([\d.]+) \(without initial", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return {"ok": ok, "ops": tps, "avg": latency}


def _process(mode, target, threads, start_at, stop_at, seed, queue):
    app = make_app(threads)
    client = _service_client
    out: list = []
    workers = [threading.Thread(target=client, args=(app, target, start_at, stop_at,
                                                     seed * 1000 + i, out, mode == "drain"))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(out)


def run(mode: str, target: str, clients: int, procs: int, seconds: float) -> dict:
    procs = max(1, min(procs, clients))
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.5 + clients * 0.03  # time for every client to connect
    stop_at = start_at + seconds
    workers = [ctx.Process(target=_process, args=(mode, target, n, start_at, stop_at, i, queue))
               for i, n in enumerate(per)]
    for w in workers:
        w.start()
    results = [r for _ in workers for r in queue.get()]
    for w in workers:
        w.join()
    ok = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    return {
        "ok": ok, "refused": sum(r[1] for r in results), "ops": ok / seconds,
        "p50": 1000 * statistics.median(latencies) if latencies else 0.0,
        "p95": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0,
    }


def oversold(successes: int, stock: int | None = None) -> int:
    """Units held beyond stock, plus one per invariant violation; must be 0."""
    app = make_app(1)
    with app.app_context():
        problems = services.check()
        held, over = db.session.execute(sa.text(
            "SELECT coalesce(sum(reserved), 0), coalesce(sum(greatest(reserved - on_hand, 0)), 0)"
            " + (SELECT coalesce(sum(greatest(reserved - on_hand, 0)), 0) FROM stock_levels)"
            " FROM products")).one()
        active = db.session.scalar(sa.text(
            "SELECT count(*) FROM reservations WHERE status = 'active'"))
        db.engine.dispose()
    for problem in problems[:5]:
        print("  check:", problem, file=sys.stderr)
    lost = abs(int(held) - successes) + abs(int(active) - successes)
    beyond = max(0, successes - stock) if stock is not None else 0
    return int(over) + len(problems) + lost + beyond


def main() -> None:
    global LOCATIONS  # read by the forked clients and the pgbench scripts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--targets", default="hot,spread")
    parser.add_argument("--locations", type=int, default=LOCATIONS,
                        help="locations each product is stocked at (MAIN and N-1 stores)")
    args = parser.parse_args()
    LOCATIONS = max(1, args.locations)

    build()
    print(f"reserve throughput, {args.seconds:g} s per cell; service = services.reserve by"
          f" SKU, threads over up to {args.procs} processes; pgbench -M prepared runs (b) the"
          " statements of the service before issue 12 in BEGIN ... COMMIT and (c) the"
          " service's one statement alone, as the service sends it; every product stocked at"
          f" {LOCATIONS} locations and each reserve naming one at random\n")
    print("| clients | target | (a) service ops/s | (b) multi-statement pgbench tps"
          " | (c) one-statement pgbench tps | a/c | service p50/p95 ms"
          " | pgbench (b)/(c) avg ms | oversold |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for clients in [int(c) for c in args.clients.split(",")]:
        for target in args.targets.split(","):
            reset()
            service = run("service", target, clients, args.procs, args.seconds)
            sold = oversold(service["ok"])
            reset()
            multi = _pgbench(MULTI, target, clients, args.seconds)
            sold += oversold(multi["ok"])
            reset()
            one = _pgbench(ONE, target, clients, args.seconds)
            sold += oversold(one["ok"])
            ratio = service["ops"] / one["ops"] if one["ops"] else 0.0
            print(f"| {clients} | {target} | {service['ops']:,.0f} | {multi['ops']:,.0f}"
                  f" | {one['ops']:,.0f} | {ratio:.0%} | {service['p50']:.1f}/"
                  f"{service['p95']:.1f} | {multi['avg']:.1f}/{one['avg']:.1f} | {sold} |",
                  flush=True)

    # Drain a scarce product with 64 clients: exactly SCARCE holds, never one more.
    reset(scarce_sku="SKU-00001")
    drained = run("drain", "hot", 64, args.procs, 120.0)
    print(f"\nscarce product ({SCARCE} units over {LOCATIONS} locations, 64 clients, service,"
          f" placed by allocation): {drained['ok']} held,"
          f" {drained['refused']} refused, oversold {oversold(drained['ok'], SCARCE)}"
          f" (held must be exactly {SCARCE})")


if __name__ == "__main__":
    main()
