"""Helpers for the storefront API tests: an authenticated test client and a live gunicorn."""
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


class Api:
    """The Flask test client with a bearer token; `post` takes an optional idempotency key."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def headers(self, key: str | None = None, **extra) -> dict:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, path: str, **kwargs):
        return self.client.get("/api/v1" + path, headers=self.headers(), **kwargs)

    def post(self, path: str, json=None, key: str | None = None, **kwargs):
        headers = self.headers(key, **kwargs.pop("headers", {}))
        return self.client.post("/api/v1" + path, json=json, headers=headers, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(database_url: str, workers: int = 4, env: dict | None = None):
    """A real gunicorn serving the app on a free loopback port; always terminated."""
    port = free_port()
    log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "5", "dashboard:create_app()"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
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
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
