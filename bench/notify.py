"""Benchmark: webhook delivery by the scheduler's `deliver_due` to receivers on loopback.

Builds `stockroom_bench_notify` (dropped and recreated): 500 products, each pushed out of
stock once (500 `out_of_stock` events, written by the services as in production). Then,
for each scenario, times delivering them all with repeated `deliver_due` runs (batch 50):

  fast endpoint only            the baseline: one receiver answering 200 at once
  fast + hanging endpoint       a second endpoint subscribed to the same events whose
                                receiver never answers (each send hits NOTIFY_TIMEOUT=2 s)

and reports deliveries/s and how long until the fast endpoint had every event. The issue's
claim: a slow or down endpoint never delays others' deliveries beyond one batch's wait.

    .venv/bin/python bench/notify.py [--url postgresql://postgres@127.0.0.1/stockroom_bench_notify]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_migrate import upgrade  # noqa: E402

from dashboard import create_app, services  # noqa: E402
from dashboard.extensions import db  # noqa: E402
from dashboard.services import delivery, webhooks  # noqa: E402

PRODUCTS = 500
SECRET = "bench-secret-0123456789abcdef"


def receiver(hang: bool) -> tuple[ThreadingHTTPServer, list]:
    got: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hang:
                time.sleep(30)  # past NOTIFY_TIMEOUT: the sender gives up first
                return
            got.append(self.headers["Stockroom-Event-Id"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def build(url: str, hanging: bool) -> tuple[list, list]:
    admin_url = sa.engine.make_url(url).set(database="postgres")
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    db.session.remove()
    db.engine.dispose()
    upgrade()
    now = datetime.now(timezone.utc)
    servers = []
    fast, got = receiver(hang=False)
    servers.append(fast)
    webhooks.add_endpoint(f"http://127.0.0.1:{fast.server_port}/", ["out_of_stock"], SECRET,
                          actor=services.SYSTEM, now=now)
    if hanging:
        slow, _ = receiver(hang=True)
        servers.append(slow)
        webhooks.add_endpoint(f"http://127.0.0.1:{slow.server_port}/", ["out_of_stock"],
                              SECRET, actor=services.SYSTEM, now=now)
    for i in range(PRODUCTS):
        product = services.create_product(f"B-{i:04d}", f"Bench {i}", actor=services.SYSTEM,
                                          now=now, on_hand=1, low_stock_threshold=0)
        services.adjust(product.id, -1, reason="bench", actor=services.SYSTEM, now=now)
    return servers, got


def run(url: str, hanging: bool) -> dict:
    servers, got = build(url, hanging)
    started = time.perf_counter()
    fast_done = None
    delivered = runs = 0
    while True:
        report = delivery.deliver_due(datetime.now(timezone.utc))
        runs += 1
        delivered += report.delivered
        if fast_done is None and len(got) >= PRODUCTS:
            fast_done = time.perf_counter() - started
        if fast_done is not None and (report.delivered == 0 or not hanging):
            break
        if runs > 200:
            break
    elapsed = time.perf_counter() - started
    for server in servers:
        server.shutdown()
    return {"fast": fast_done, "elapsed": elapsed, "delivered": delivered, "runs": runs,
            "unique": len(set(got)), "received": len(got)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/stockroom_bench_notify"))
    url = parser.parse_args().url
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                      "WEBHOOK_ALLOWED_HOSTS": ("127.0.0.1",), "NOTIFY_TIMEOUT": 2,
                      "NOTIFY_BATCH": 50})
    rows = []
    with app.app_context():
        for label, hanging in (("fast endpoint only (baseline)", False),
                               ("fast + hanging endpoint", True)):
            rows.append((label, run(url, hanging)))
    print(f"\n{PRODUCTS} out_of_stock events, batch 50, NOTIFY_TIMEOUT 2 s, PostgreSQL, loopback\n")
    print("| scenario | fast endpoint had all 500 after | deliveries/s to it | "
          "received (unique) | deliver_due runs |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['fast']:.2f} s | {PRODUCTS / r['fast']:.0f} | "
              f"{r['received']} ({r['unique']}) | {r['runs']} |")


if __name__ == "__main__":
    main()
