"""Benchmark: the production layout on one machine, built from deploy/'s own files.

    nginx (deploy/nginx/stockroom.conf, TLS with a throwaway certificate)
      -> three `gunicorn wsgi:app` "hosts" on their own ports (gunicorn.conf.py,
         deploy/stockroom.env.example: PROXY_HOPS=1, DATABASE_POOLER=transaction, JSON logs)
      -> PgBouncer in transaction mode (deploy/pgbouncer/pgbouncer.ini)
      -> PostgreSQL; plus one `flask --app wsgi scheduler` through the same PgBouncer.

Storefront clients reserve (and release half of what they hold) through nginx for a few
seconds until stock runs short, with unknown SKUs and hostile bodies mixed in, while the
scheduler expires a backlog of overdue holds made beforehand. Then it checks: no 5xx,
every answer has an X-Request-Id, the backlog is gone (expiry lag 0), `flask --app wsgi
check` finds I1-I6 intact, /healthz
answers 200 through nginx, and a sign-in with a spoofed X-Forwarded-For records the
address nginx saw. Prints the outcomes, what each host served, and a sample of /metrics.

Needs `apt-get install nginx pgbouncer`. Creates the database stockroom_bench_hosts
(refuses if it exists) and drops it at the end (`--keep` keeps it).

    .venv/bin/python bench/three_hosts.py [--clients 16] [--seconds 15]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
import sqlalchemy as sa
import urllib3
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import deploy_render  # noqa: E402  (bench/, beside this script)

from tests.helpers.pgbouncer import BINARY as PGBOUNCER  # noqa: E402
from tests.helpers.pgbouncer import command as pgbouncer_command  # noqa: E402
from tests.helpers.pgbouncer import wait_until_listening  # noqa: E402
from tests.helpers.servers import free_port  # noqa: E402

from dashboard import create_app, services  # noqa: E402
from dashboard.services import SYSTEM, Owner  # noqa: E402

DB_NAME = "stockroom_bench_hosts"
BIN = Path(sys.executable).parent
PRODUCTS, ON_HAND, BACKLOG = 40, 8, 300
PASSWORD = "bench-three-hosts-1"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def url(database: str, port: int = 5432) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def admin(sql: str) -> list:
    engine = sa.create_engine(url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql))
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def prepare() -> str:
    """The database, migrated, with products, a backlog of overdue holds, staff and a token."""
    if admin(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
        sys.exit(f"database {DB_NAME} exists (an interrupted run?): drop it first")
    admin(f'CREATE DATABASE "{DB_NAME}"')
    admin(f'ALTER DATABASE "{DB_NAME}" SET jit = off')  # deploy/README.md, step 2
    subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": url(DB_NAME)}, capture_output=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url(DB_NAME), "SECRET_KEY": "bench"})
    now = datetime.now(timezone.utc)
    with app.app_context():
        for i in range(PRODUCTS):
            services.create_product(f"HOST-{i:03d}", f"Bench product {i}", actor=SYSTEM, now=now,
                                    on_hand=ON_HAND, low_stock_threshold=10)
        for i in range(BACKLOG):  # due a minute ago: the scheduler's work during the run
            services.reserve(f"HOST-{i % PRODUCTS:03d}", 1, Owner(session_key=f"old-{i}"),
                             ttl_seconds=60, now=now - timedelta(minutes=2))
        services.create_staff("bench@example.com", role="viewer", password=PASSWORD,
                              name="Bench", now=now)
        _, token = services.create_api_client("bench storefront", now=now)
    return token


@contextmanager
def process(argv: list[str], log: Path, env: dict | None = None):
    with open(log, "wb") as out:
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_for(what: str, check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    sys.exit(f"timed out waiting for {what}")


def storefront(base: str, token: str, seconds: float, seed: int, results: list) -> None:
    """One client: reserve, release half of what it got, now and then a hostile body."""
    rng, session = random.Random(seed), requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.04:
            kind, body = "hostile", {"sku": "HOST-001", "quantity": 10**12, "session_key": "x"}
        elif roll < 0.07:
            kind, body = "hostile", {"sku": "\x00" * 3, "quantity": "1", "extra": [1]}
        elif roll < 0.10:
            kind, body = "unknown sku", {"sku": "NO-SUCH-SKU", "quantity": 1, "session_key": "x"}
        else:
            kind = "reserve"
            body = {"sku": f"HOST-{rng.randrange(PRODUCTS):03d}", "quantity": rng.randint(1, 3),
                    "session_key": f"client-{seed}", "ttl_seconds": 600}
        started = time.perf_counter()
        answer = session.post(f"{base}/api/v1/reservations", json=body, timeout=30,
                              verify=False)
        results.append((kind, answer.status_code, time.perf_counter() - started,
                        "X-Request-Id" in answer.headers))
        if kind == "reserve" and answer.status_code == 201 and rng.random() < 0.5:
            started = time.perf_counter()
            released = session.post(f"{base}/api/v1/reservations/{answer.json()['id']}/release",
                                    json={}, timeout=30, verify=False)
            results.append(("release", released.status_code, time.perf_counter() - started,
                            "X-Request-Id" in released.headers))


def host_metrics(port: int) -> tuple[str, dict]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def total(samples: dict, name: str, **match) -> float:
    return sum(v for (n, labels), v in samples.items()
               if n == name and all(dict(labels).get(k) == w for k, w in match.items()))


def ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    return f"{statistics.quantiles(values, n=100)[int(q) - 1] * 1000:.1f}" if len(values) > 1 \
        else f"{values[0] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    for binary in (deploy_render.NGINX, PGBOUNCER):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} is missing: apt-get install nginx pgbouncer")

    token = prepare()
    work = Path(tempfile.mkdtemp(prefix="stockroom-three-hosts-"))
    try:
        with ExitStack() as stack:
            report = run(stack, work, token, args)
        print(report)
    finally:
        if not args.keep:
            admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def run(stack: ExitStack, work: Path, token: str, args) -> str:
    bouncer_port = free_port()
    bouncer = stack.enter_context(process(
        pgbouncer_command(deploy_render.pgbouncer_config(work / "pgbouncer", bouncer_port,
                                                         DB_NAME)), work / "pgbouncer.log"))
    wait_until_listening(bouncer_port, bouncer)
    pooled = url("stockroom", bouncer_port)  # PgBouncer's alias for the database
    ports = [free_port() for _ in range(3)]
    for i, port in enumerate(ports):
        env = deploy_render.environment({
            "DATABASE_URL": pooled, "SECRET_KEY": "bench-three-hosts", "WEB_CONCURRENCY": "2",
            "METRICS_ALLOW": "127.0.0.0/8", "PROMETHEUS_MULTIPROC_DIR": str(work / f"metrics-{i}"),
        })
        stack.enter_context(process([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                                     "wsgi:app"], work / f"host-{i}.log", env))
    scheduler_env = deploy_render.environment({
        "DATABASE_URL": pooled, "SECRET_KEY": "bench-three-hosts", "EXPIRE_INTERVAL": "2",
        "ALERTS_INTERVAL": "5", "EXPIRE_BATCH": "100"})
    stack.enter_context(process([str(BIN / "flask"), "--app", "wsgi", "scheduler"],
                                work / "scheduler.log", scheduler_env))
    https_port = free_port()
    nginx_conf = deploy_render.nginx_config(work / "nginx", [f"127.0.0.1:{p}" for p in ports],
                                            https_port, free_port())
    stack.enter_context(process(deploy_render.nginx_command(nginx_conf), work / "nginx.log"))
    base = f"https://127.0.0.1:{https_port}"
    wait_for("every host", lambda: all(requests.get(f"http://127.0.0.1:{p}/healthz/web",
                                                    timeout=2).ok for p in ports))
    wait_for("nginx", lambda: requests.get(f"{base}/healthz/web", verify=False, timeout=2).ok)

    results: list = []
    clients = [threading.Thread(target=storefront, args=(base, token, args.seconds, n, results))
               for n in range(args.clients)]
    started = time.perf_counter()
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    elapsed = time.perf_counter() - started

    wait_for("the overdue backlog to be expired",
             lambda: host_metrics(ports[0])[1][("stockroom_expiry_lag_seconds", ())] == 0)
    health = requests.get(f"{base}/healthz", verify=False, timeout=10)
    signed_in = sign_in_with_a_spoofed_address(base)
    check = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "check"], cwd=ROOT,
                           env=scheduler_env, capture_output=True, text=True)
    per_host = [host_metrics(port) for port in ports]
    return format_report(args, elapsed, results, per_host, health, signed_in, check)


def sign_in_with_a_spoofed_address(base: str) -> str | None:
    session = requests.Session()
    page = session.get(f"{base}/sign-in", timeout=10, verify=False).text
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    session.post(f"{base}/sign-in", timeout=10, allow_redirects=False, verify=False,
                 headers={"X-Forwarded-For": "6.6.6.6", "Referer": f"{base}/sign-in"},
                 data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token})
    engine = sa.create_engine(url(DB_NAME))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT last_login_ip FROM staff_users"
                                        " WHERE email = 'bench@example.com'")).scalar()
    finally:
        engine.dispose()


def pgbouncer_version() -> str:
    answer = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True)
    return (answer.stdout.splitlines() or ["PgBouncer"])[0]


def format_report(args, elapsed, results, per_host, health, signed_in, check) -> str:
    lines = [f"\nThree gunicorn hosts (2 gthread workers each) behind nginx (TLS), one scheduler,"
             f" {pgbouncer_version()} (transaction mode), PostgreSQL; {args.clients} clients for"
             f" {elapsed:.1f} s, {os.cpu_count()} cores\n",
             "| call | status | requests | p50 ms | p95 ms |", "|---|---:|---:|---:|---:|"]
    groups: dict = {}
    for kind, status, seconds, _ in results:
        groups.setdefault((kind, status), []).append(seconds)
    for (kind, status), times in sorted(groups.items()):
        lines.append(f"| {kind} | {status} | {len(times)} | {ms(times, 50)} | {ms(times, 95)} |")
    statuses = Counter(status for _, status, _, _ in results)
    lines.append(f"\n{len(results)} requests, {len(results) / elapsed:.0f}/s through nginx;"
                 f" 5xx: {sum(n for s, n in statuses.items() if s >= 500)};"
                 f" without X-Request-Id: {sum(1 for r in results if not r[3])}\n")
    lines += ["| host | requests answered | reserves held | insufficient | pool checked out |",
              "|---|---:|---:|---:|---:|"]
    for i, (_, samples) in enumerate(per_host):
        lines.append(
            f"| host {i + 1} | {total(samples, 'stockroom_http_requests_total'):.0f} "
            f"| {total(samples, 'stockroom_reserves_total', outcome='held'):.0f} "
            f"| {total(samples, 'stockroom_reserves_total', outcome='insufficient'):.0f} "
            f"| {total(samples, 'stockroom_db_pool_checked_out'):.0f} |")
    first = per_host[0][1]
    expired = total(first, "stockroom_job_runs_last_hour", job="expire", status="ok")
    lines += [
        f"\nexpiry: {BACKLOG} overdue holds swept by {expired:.0f} ok expire runs; lag now"
        f" {first[('stockroom_expiry_lag_seconds', ())]:.0f} s",
        f"/healthz through nginx: {health.status_code} {json.dumps(health.json())[:120]}",
        f"sign-in with X-Forwarded-For: 6.6.6.6 through nginx recorded last_login_ip = {signed_in}",
        f"flask check (through PgBouncer): exit {check.returncode} {check.stdout.strip()[:200]}",
        "\nSample of host 1's /metrics (buckets left out):\n```",
        *[line for line in per_host[0][0].splitlines()
          if line.startswith("stockroom_") and "_bucket" not in line
          and ('route="/api/v1/reservations"' in line or "route=" not in line)],
        "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
