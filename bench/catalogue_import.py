"""Benchmark: the product CSV import at 100k rows (issue 13: dry run and apply < 60 s each).

Builds `stockroom_bench_catalogue` (dropped and recreated, migrated), writes a 100k-row
product CSV (semicolons, a BOM, mixed-case aliased headers, valid EAN-13 barcodes,
categories, suppliers, opening stock) and times, through the services the dashboard and the
CLI call:

  dry run (all new)     check_products on the empty catalogue: 100k creates
  apply (all new)       import_products: 100k INSERTs, 100k receive lines, alerts
  dry run (all changed) the same SKUs with new prices and categories: 100k updates
  apply (all changed)   100k UPDATE ... FROM VALUES, alerts

Baseline: a bare COPY of the same 100k rows into an unlogged copy of `products` (the
least any import must write), timed the same way. Prints a markdown table.

    .venv/bin/python bench/catalogue_import.py [--url postgresql+psycopg://postgres@127.0.0.1/stockroom_bench_catalogue]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_migrate import upgrade  # noqa: E402

from dashboard import create_app  # noqa: E402
from dashboard import services  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.services.catalogue_fields import gtin_check_digit  # noqa: E402
from dashboard.services.product_import import check_products, import_products  # noqa: E402

ROWS = 100_000
TARGET_SECONDS = 60.0


def ean13(i: int) -> str:
    body = f"40{i:010d}"
    return body + str(gtin_check_digit(body))


def catalogue_csv(price_cents: int, category_shift: int) -> bytes:
    out = io.StringIO()
    out.write("\ufeffItem Code;Title;Unit Price;EAN;Department;Vendor;Qty;Reorder point\r\n")
    for i in range(ROWS):
        price = (price_cents + i % 5000) / 100
        out.write(f"SKU-{i:06d};Product {i} \"{i % 13}\";{price:.2f};{ean13(i)};"
                  f"Dept {(i + category_shift) % 40};Supplier {i % 300};{i % 50};{i % 7}\r\n")
    return out.getvalue().encode()


def build(url: str) -> None:
    admin_url = sa.engine.make_url(url).set(database="postgres")
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade()


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def bare_copy() -> float:
    """COPY of the same rows' columns into an unlogged table shaped like products."""
    lines = "".join(
        f"SKU-{i:06d}\tProduct {i}\t{(995 + i % 5000) / 100:.2f}\t{ean13(i)}\tDept {i % 40}\t"
        f"Supplier {i % 300}\t{i % 50}\t{i % 7}\n" for i in range(ROWS))
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute("CREATE UNLOGGED TABLE bench_copy (sku text, name text, price numeric,"
                           " barcode text, category text, supplier text, on_hand int,"
                           " low_stock_threshold int)")
            started = time.perf_counter()
            with cursor.copy("COPY bench_copy FROM STDIN") as copy:
                copy.write(lines)
            raw.commit()
            seconds = time.perf_counter() - started
            cursor.execute("DROP TABLE bench_copy")
            raw.commit()
    finally:
        raw.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/stockroom_bench_catalogue"))
    args = parser.parse_args()
    app = create_app({"SQLALCHEMY_DATABASE_URI": args.url})
    with app.app_context():
        build(args.url)
        first, second = catalogue_csv(995, 0), catalogue_csv(1295, 3)
        baseline = bare_copy()
        now = datetime.now(timezone.utc)
        rows = []
        for label, data in (("all new", first), ("all changed", second)):
            seconds, report = timed(lambda: check_products(data))
            db.session.rollback()
            rows.append((f"dry run ({label})", seconds, report))
            seconds, report = timed(lambda: import_products(data, actor=services.SYSTEM, now=now))
            rows.append((f"apply ({label})", seconds, report))
        problems = services.check()
        print(f"\nProduct import of {ROWS:,} rows ({len(first) / 1e6:.1f} MB CSV, PostgreSQL),"
              f" load average {os.getloadavg()[0]:.2f}")
        print(f"baseline: bare COPY of the same rows into an unlogged table: {baseline:.2f} s\n")
        print("| step | seconds | x COPY | created | updated | bad rows | target < 60 s |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for label, seconds, report in rows:
            ok = "met" if seconds < TARGET_SECONDS else "MISSED"
            print(f"| {label} | {seconds:.2f} | {seconds / baseline:.0f} | {len(report.creates):,}"
                  f" | {len(report.updates):,} | {len(report.bad_rows):,} | {ok} |")
        print(f"\ninvariants after: {'clean' if not problems else problems[:5]}")


if __name__ == "__main__":
    main()
