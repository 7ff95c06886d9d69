"""Real servers for tests that need one: a free loopback port, a gunicorn on the test
database, stopping a server process.

`gunicorn` runs from the repository root, so gunicorn.conf.py configures it as it does a
shop's plain `gunicorn wsgi:app`; arguments given here override it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.helpers.app import ROOT

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Ask the process to stop (SIGTERM); kill it if it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def gunicorn(database_url: str, workers: int | None = 4, env: dict | None = None,
             app: str = "dashboard:create_app()", log_path: Path | None = None):
    """A real gunicorn serving the app on a free loopback port; yields its base URL.

    workers=None leaves the count to gunicorn.conf.py (WEB_CONCURRENCY); the output goes
    to `log_path` when given. Always terminated.
    """
    port = free_port()
    # A file, not a pipe: a full pipe would stall the server.
    log = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()
    size = [] if workers is None else ["-w", str(workers)]
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), *size, "-b", f"127.0.0.1:{port}", "--graceful-timeout",
         "5", app],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/api/v1/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or workers still booting
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError("gunicorn did not start:\n" + log.read().decode()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        stop(process)
        log.close()
