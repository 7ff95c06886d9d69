"""A throwaway PgBouncer in transaction mode in front of the local PostgreSQL.

Used by the deploy tests, `.ci/run` (the suite through PgBouncer) and bench/three_hosts.py.
Every database on the server is reachable through it (the `*` fallback entry), so a test
run's own `stockroom_test_<random>` database works too. Loopback only, no authentication.

    .venv/bin/python -m tests.helpers.pgbouncer --port 6432   # foreground, until killed
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.servers import free_port, stop

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
UPSTREAM = "host=127.0.0.1 port=5432"


def available() -> bool:
    return os.access(BINARY, os.X_OK)


def write_config(directory: Path, port: int, pool_size: int = 20, upstream: str = UPSTREAM) -> Path:
    """pgbouncer.ini (and its user list) for transaction pooling on 127.0.0.1:`port`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(f"""\
[databases]
* = {upstream}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
pool_mode = transaction
auth_type = trust
auth_file = {directory / "userlist.txt"}
admin_users = postgres
max_client_conn = 2000
default_pool_size = {pool_size}
# Try a failed server login again at once (default: refuse clients for 15 s after one).
server_login_retry = 0
# A client waiting for a server connection fails after 10 s (default 120 s), as deploy/'s
# does after 15: an unreachable database shows up as errors, not as stalled jobs.
query_wait_timeout = 10
""")
    # PgBouncer refuses to run as root; it drops to `postgres`, which must read these files.
    directory.chmod(0o755)
    return ini


def command(ini: Path) -> list[str]:
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    return [BINARY, *user, str(ini)]


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"pgbouncer is not listening on {port}")


@contextmanager
def running(pool_size: int = 20, upstream: str = UPSTREAM):
    """Start PgBouncer on a free port; yields its base URL (database `postgres`)."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="stockroom-pgbouncer-"))
    log = open(directory / "pgbouncer.log", "wb")
    process = subprocess.Popen(command(write_config(directory, port, pool_size, upstream)),
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, process)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop(process, timeout=10)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=6432)
    parser.add_argument("--pool-size", type=int, default=20)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="stockroom-pgbouncer-"))
    os.execv(BINARY, command(write_config(directory, args.port, args.pool_size)))


if __name__ == "__main__":
    main()
