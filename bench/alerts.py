"""Benchmark: evaluating alerts over 100k products (SPEC §11: <= 1 s).

Builds `stockroom_bench_alerts` (dropped and recreated) with bulk SQL: 100k products
(--products), all healthy, stocked at 5 locations (MAIN and four stores, a level per product
at each), evaluated once so the alert state is true. Then, for each scenario, changes
stock behind the services' back with one raw UPDATE (as an outside system would) and
times `services.evaluate_alerts(now=...)` over every product:

  nothing changed       every product already right: the sweep finds nothing to do
  20k products fall     20k products drop to low (15k) or out (5k): 20k alerts raised
  5k escalate           5k of those low products run out: LOW -> OUT in place
  all recover           every product restocked: 20k alerts resolved automatically

Baseline: one bare SELECT over all products computing each one's level (the least any
evaluation must read), timed the same way. Prints a markdown table.

    .venv/bin/python bench/alerts.py [--products 100000]
                                     [--url postgresql://postgres@127.0.0.1/stockroom_bench_alerts]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_migrate import upgrade  # noqa: E402

from bench.stores import add_stores  # noqa: E402
from dashboard import create_app  # noqa: E402
from dashboard import services  # noqa: E402
from dashboard.extensions import db  # noqa: E402

PRODUCTS = 100_000
LOCATIONS = 5  # MAIN (id 1, made by migration 0009) and stores 2..5; 100 units at each
TARGET_SECONDS = 1.0
SCENARIOS = [
    ("nothing changed", None),
    ("20k products fall (15k low, 5k out)",
     "UPDATE products SET on_hand = CASE WHEN id % 20 = 0 THEN 0 ELSE 5 END"
     " WHERE id % 5 = 0"),
    ("5k low products run out (escalate)",
     "UPDATE products SET on_hand = 0 WHERE id % 5 = 0 AND id % 20 = 5"),
    ("all recover (resolve)", "UPDATE products SET on_hand = 500 WHERE on_hand < 500"),
]
BARE = (
    "SELECT count(*) FILTER (WHERE level IS NOT NULL) FROM ("
    " SELECT CASE WHEN NOT is_active THEN NULL WHEN on_hand - reserved <= 0 THEN 'OUT'"
    " WHEN on_hand - reserved <= low_stock_threshold THEN 'LOW' END AS level FROM products) p"
)


def build(url: str) -> None:
    admin_url = sa.engine.make_url(url).set(database="postgres")
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade()
    db.session.execute(sa.text(
        "INSERT INTO products (sku, name, price, on_hand, reserved, low_stock_threshold,"
        " is_active, alert_muted, created_at, updated_at)"
        " SELECT 'SKU-' || lpad(i::text, 6, '0'), 'Product ' || i, 9.95, 500, 0, 10,"
        " true, false, now(), now() FROM generate_series(1, :n) AS i"), {"n": PRODUCTS})
    add_stores(db.session, LOCATIONS, datetime.now(timezone.utc))
    db.session.execute(sa.text(
        "INSERT INTO stock_levels (product_id, location_id, on_hand, reserved,"
        " product_threshold, product_is_active)"
        " SELECT p.id, l.id, p.on_hand / :n, 0, p.low_stock_threshold, p.is_active"
        " FROM products p, locations l"), {"n": LOCATIONS})
    db.session.commit()
    db.session.execute(sa.text("ANALYZE products, stock_levels"))
    db.session.commit()


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    global PRODUCTS  # build() reads it
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/stockroom_bench_alerts"))
    parser.add_argument("--products", type=int, default=PRODUCTS)
    args = parser.parse_args()
    PRODUCTS = args.products
    app = create_app({"SQLALCHEMY_DATABASE_URI": args.url})
    with app.app_context():
        build(args.url)
        services.evaluate_alerts(now=datetime.now(timezone.utc))
        bare = [timed(lambda: db.session.execute(sa.text(BARE)).scalar())[0] for _ in range(5)]
        db.session.rollback()
        rows = []
        for label, change in SCENARIOS:
            if change:
                db.session.execute(sa.text(change))
                db.session.commit()
            seconds, changes = timed(lambda: services.evaluate_alerts(now=datetime.now(timezone.utc)))
            # The raw UPDATEs bypass the ledger and the levels on purpose (I1 totals, I3);
            # alerts, which read the totals, must still be true.
            problems = [p for p in services.check() if p.startswith(("I4", "I5"))]
            rows.append((label, seconds, changes, problems))
        print(f"\nAlert evaluation over {PRODUCTS:,} products at {LOCATIONS} locations"
              f" (PostgreSQL), "
              f"load average {os.getloadavg()[0]:.2f}")
        if PRODUCTS != 100_000:
            print("(the scenario labels count at 100k products: each is the same share here)")
        print(f"baseline: bare SELECT of every product's level, median of 5: "
              f"{statistics.median(bare) * 1000:.0f} ms\n")
        print("| scenario | seconds | opened | escalated | de-escalated | resolved "
              "| target <= 1 s | I4/I5 after |")
        print("|---|---:|---:|---:|---:|---:|---|---|")
        for label, seconds, c, problems in rows:
            ok = "met" if seconds <= TARGET_SECONDS else "MISSED"
            state = "clean" if not problems else f"{len(problems)} violations"
            print(f"| {label} | {seconds:.3f} | {c.opened:,} | {c.escalated:,} | "
                  f"{c.deescalated:,} | {c.resolved:,} | {ok} | {state} |")


if __name__ == "__main__":
    main()
