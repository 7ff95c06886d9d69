"""Benchmark: does /api/v1/ping still answer while slow clients hold connections open?

For each server configuration, ROUNDS times: starts gunicorn on loopback, opens SLOW
connections that each send half of their request headers and then wait, and then makes
PINGS requests one after another (a new connection each, 5 s timeout). Which worker takes
which connection is up to the kernel, so every round starts a fresh server. Prints how
many were answered and how long they took, as a markdown table:

  - before: the old README command, sync workers (`-k sync -w 4`, no gunicorn.conf.py);
  - gthread, no connection cap: threads alone (`--worker-connections 1000`);
  - after: plain `gunicorn wsgi:app`, i.e. this repository's gunicorn.conf.py.

/api/v1/ping touches no database; the app runs on a throwaway SQLite file.

    .venv/bin/python bench/slow_clients.py [--slow 8] [--pings 10] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers.servers import free_port, stop  # noqa: E402

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
CONFIGS = [
    ("before: -k sync -w 4", ["-c", "/dev/null", "-k", "sync", "-w", "4"]),
    ("gthread 9 x 4, no connection cap", ["-w", "9", "--worker-connections", "1000"]),
    ("after: gunicorn.conf.py", []),
]
HALF_REQUEST = b"GET /api/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"


def ping(port: int, timeout: float) -> float | None:
    """Seconds for one GET /api/v1/ping on a new connection; None if it timed out."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /api/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Connection: close\r\n\r\n")
            answer = sock.recv(64)
    except OSError:
        return None
    return time.perf_counter() - started if answer.startswith(b"HTTP/1.1 200") else None


@contextmanager
def server(args: list[str], workdir: str):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
           "SECRET_KEY": "bench-slow-clients", "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([GUNICORN, *args, "-b", f"127.0.0.1:{port}", "wsgi:app"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while ping(port, 1) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"gunicorn {' '.join(args)} did not start")
            time.sleep(0.2)
        time.sleep(1)  # every worker booted, not just the first
        yield port
    finally:
        stop(process)


def slow_connections(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(HALF_REQUEST)
        held.append(sock)
    time.sleep(0.5)  # let the server pick them up
    return held


def measure(port: int, slow: int, pings: int, timeout: float) -> list[float | None]:
    held = slow_connections(port, slow)
    try:
        return [ping(port, timeout) for _ in range(pings)]
    finally:
        for sock in held:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=8, help="slow connections held open")
    parser.add_argument("--pings", type=int, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()

    ms = lambda value: f"{value * 1000:.1f}"  # noqa: E731
    print(f"\n/api/v1/ping with {args.slow} slow connections (half their headers sent), "
          f"{args.rounds} rounds of {args.pings} pings, {args.timeout:g} s timeout each, "
          f"{os.cpu_count()} cores\n")
    print("| server | answered | timed out | p50 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir:
        for label, config in CONFIGS:
            times = []
            for _ in range(args.rounds):
                with server(config, workdir) as port:
                    times += measure(port, args.slow, args.pings, args.timeout)
            answered = sorted(t for t in times if t is not None)
            p50, top = ((ms(statistics.median(answered)), ms(answered[-1])) if answered
                        else ("-", "-"))
            print(f"| {label} | {len(answered)} of {len(times)} | {len(times) - len(answered)} "
                  f"| {p50} | {top} |", flush=True)


if __name__ == "__main__":
    main()
