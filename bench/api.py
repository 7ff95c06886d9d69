"""Benchmark: the storefront API's reserve call through gunicorn, against the ceiling.

Serves the app with gunicorn as deployed (gunicorn.conf.py: its workers and threads unless
--workers or GUNICORN_CMD_ARGS say otherwise) on loopback and, for 1, 8 and 32 concurrent
clients, runs for a few seconds each:
  - `GET /api/v1/ping`: no token, no database: the ceiling of this server on this machine;
  - `POST /api/v1/reservations` (1 unit, spread over 200 products so no row is hot);
  - the same with an `Idempotency-Key` (one key row inserted, then answered, per call);
  - `POST /api/v1/reservations/<id>/release` and `.../commit` of holds the reserve cells made
    (topped up, untimed, before each of these cells);
  - `services.reserve` called in this process, no HTTP: what the API adds is the gap.
Prints requests/s and p50/p95 latency (client side, new connection per request, as
gunicorn.conf.py keeps none alive) as a markdown table.

The load generator runs in this process (threads, http.client) on the same cores as
gunicorn and PostgreSQL, so the numbers are lower bounds of the server's capacity.

Creates the database `stockroom_bench_api` (refuses if it exists: it drops only what it
created), migrates it with `flask --app wsgi db upgrade`, adds an API client and products,
and drops it at the end (`--keep` keeps it).

    .venv/bin/python bench/api.py [--seconds 5] [--workers N] [--keep]
Base URL from BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1/postgres).
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard import create_app, services  # noqa: E402
from dashboard.services import SYSTEM, Owner  # noqa: E402

DB_NAME = "stockroom_bench_api"
PRODUCTS = 200
CLIENTS = (1, 8, 32)


def url(name: str) -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    return sa.engine.make_url(base).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)


def admin(sql: str) -> list:
    engine = sa.create_engine(url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql))
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def service_caller(app):
    """`services.reserve` with the same arguments, one app context per client thread."""
    contexts = threading.local()

    def call(client, n):
        if not hasattr(contexts, "ctx"):
            contexts.ctx = app.app_context()
            contexts.ctx.push()
        start = time.perf_counter()
        services.reserve(f"BENCH-{(client * 7919 + n) % PRODUCTS:04d}", 1,
                         Owner(session_key=f"bench-{client}"), actor=SYSTEM,
                         now=datetime.now(timezone.utc))
        return 201, time.perf_counter() - start

    return call


def prepare() -> str:
    """Create and migrate the bench database; an API client and products. Returns the token."""
    if admin(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
        sys.exit(f"database {DB_NAME} exists (an interrupted run?): drop it first")
    admin(f'CREATE DATABASE "{DB_NAME}"')
    env = {**os.environ, "DATABASE_URL": url(DB_NAME)}
    subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db",
                    "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url(DB_NAME)})
    now = datetime.now(timezone.utc)
    with app.app_context():
        for i in range(PRODUCTS):
            services.create_product(f"BENCH-{i:04d}", f"Bench product {i}", actor=SYSTEM,
                                    now=now, on_hand=1_000_000, low_stock_threshold=5)
        _, token = services.create_api_client("bench", now=now)
    return token


def start_server(workers: int | None) -> tuple[subprocess.Popen, int]:
    port = 18000 + os.getpid() % 1000
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"),
         *(["-w", str(workers)] if workers else []), "-b",
         f"127.0.0.1:{port}", "--graceful-timeout", "5", "dashboard:create_app()"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url(DB_NAME), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/api/v1/ping")[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    sys.exit("gunicorn did not start")


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, answer: list | None = None) -> tuple[int, float]:
    """(status, seconds); the answer's body is appended to `answer` when one is given."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        if answer is not None:
            answer.append(data)
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def load(port: int, clients: int, seconds: float, make_request) -> dict:
    """`clients` threads calling make_request(client, n) back to back for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[Counter] = [Counter() for _ in range(clients)]
    stop = time.perf_counter() + seconds

    def run(client: int):
        n = 0
        while time.perf_counter() < stop:
            status, elapsed = make_request(client, n)
            n += 1
            if status >= 300:
                failures[client][status] += 1
            latencies[client].append(elapsed)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    everything = sorted(x for per_client in latencies for x in per_client)
    return {
        "rps": len(everything) / wall,
        "p50": statistics.median(everything) * 1000,
        "p95": everything[int(len(everything) * 0.95) - 1] * 1000,
        "failed": sum(failures, Counter()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, help="default: gunicorn.conf.py's")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)))
    args = parser.parse_args()

    token = prepare()
    process = None
    try:
        process, port = start_server(args.workers)
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        run_id = int(time.time())

        def ping(client, n):
            return request(port, "GET", "/api/v1/ping")

        keys = itertools.count()
        holds: deque[int] = deque()  # made by the reserve cells, ended by release/commit

        def reserve(client, n, key=False):
            body = json.dumps({"sku": f"BENCH-{(client * 7919 + n) % PRODUCTS:04d}",
                               "quantity": 1, "session_key": f"bench-{client}"}).encode()
            # A new key per call: (client, n) repeat from cell to cell, and a repeated key
            # would be a replay (cheaper, and the same hold id twice for release/commit).
            headers = {**auth, "Idempotency-Key": f"{run_id}-{next(keys)}"} if key else auth
            answer: list = []
            status, elapsed = request(port, "POST", "/api/v1/reservations", body, headers,
                                      answer)
            if status == 201:
                holds.append(json.loads(answer[0])["id"])
            return status, elapsed

        def end(action):
            def call(client, n):
                try:
                    hold_id = holds.popleft()
                except IndexError:
                    return 599, 0.0  # ran out of holds: counted as a failure
                answer: list = []
                status, elapsed = request(port, "POST",
                                          f"/api/v1/reservations/{hold_id}/{action}", b"{}",
                                          auth, answer)
                if status >= 300 and len(refusals) < 3:
                    refusals.append(f"{action} {hold_id}: {status} {answer[0][:300]!r}")
                return status, elapsed
            return call

        refusals: list[str] = []  # the first few, printed at the end

        def top_up(wanted: int) -> None:
            """Enough active holds for the next release or commit cell (made untimed)."""
            while len(holds) < wanted:
                load(port, 32, 1.0, reserve)

        direct = service_caller(create_app({"SQLALCHEMY_DATABASE_URI": url(DB_NAME),
                                            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True,
                                                                          "pool_size": 40}}))
        calls = [("ping (ceiling)", ping), ("reserve", reserve),
                 ("reserve + Idempotency-Key", lambda c, n: reserve(c, n, key=True)),
                 ("release", end("release")), ("commit", end("commit")),
                 ("services.reserve, no HTTP", direct)]
        load(port, 4, 1.0, reserve)  # warm up every worker's imports and connection pool
        rows = []
        for clients in [int(c) for c in args.clients.split(",")]:
            for name, call in calls:
                if name in ("release", "commit"):
                    reserved = next(r["rps"] for n, c, r in rows
                                    if n == "reserve" and c == clients)
                    top_up(int(2 * reserved * args.seconds) + clients)
                result = load(port, clients, args.seconds, call)
                rows.append((name, clients, result))
                print(f"  {name} x{clients}: {result['rps']:.0f} req/s", file=sys.stderr)
        for refusal in refusals:
            print("  refused:", refusal, file=sys.stderr)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
        if not args.keep:
            admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')

    workers = args.workers or "gunicorn.conf.py's"
    print(f"\nStorefront API through gunicorn ({workers} gthread workers), "
          f"{args.seconds:.0f} s per cell, {os.cpu_count()} CPUs shared with PostgreSQL "
          "and the load generator\n")
    print("| call | clients | req/s | p50 ms | p95 ms | % of ceiling | % of reserve | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ceiling = {clients: r["rps"] for name, clients, r in rows if name.startswith("ping")}
    plain = {clients: r["rps"] for name, clients, r in rows if name == "reserve"}
    for name, clients, r in rows:
        print(f"| {name} | {clients} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} "
              f"| {100 * r['rps'] / ceiling[clients]:.0f}% | {100 * r['rps'] / plain[clients]:.0f}%"
              f" | {sum(r['failed'].values())} {dict(r['failed']) or ''} |")


if __name__ == "__main__":
    main()
