"""A PostgreSQL instance of the fault test's own: its data directory, its port, its restarts.

The suite's PostgreSQL on 5432 is shared with everyone and must never be restarted, so the
fault test runs `initdb` into a temporary directory and restarts only that instance.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg

HARNESS_APP_NAME = "stockroom-fault-harness"  # our own connections: never terminated as faults


def postgres_bin() -> Path:
    """PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin with an initdb."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if not found:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl): set PG_BINDIR or"
                           " install the postgresql server package")
    return Path(found[-1]).parent


class Cluster:
    """`initdb`, start, restart (fast or immediate), stop; SQL as the harness."""

    def __init__(self, port: int, database: str = "shop"):
        self.port, self.database = port, database
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="stockroom-faults-pg-", dir="/tmp"))
        self.data, self.log = self.root / "data", self.root / "postgres.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:  # initdb refuses to run as root: the directory belongs to postgres
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    def _pg(self, program: str, *args: str, timeout: float = 60) -> str:
        command = [str(self.bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{self.log_tail()}")
        return done.stdout

    def init(self) -> None:
        self._pg("initdb", "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "-D", str(self.data))
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nmax_connections = 150\n")
        self.start()
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def restart(self, mode: str) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60",
                 "restart")

    def is_running(self) -> bool:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "status", timeout=15)
        except RuntimeError:
            return False
        return True

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def connect(self, database: str | None = None) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               dbname=database or self.database, autocommit=True,
                               connect_timeout=5, application_name=HARNESS_APP_NAME)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def destroy(self) -> None:
        """Stop the instance (immediately: nothing in it is kept) and delete its files."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            try:
                self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                _kill_postmaster(pid_file)
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_postmaster(pid_file: Path) -> None:
    """Last resort when pg_ctl cannot stop it: SIGKILL our postmaster (its backends follow)."""
    try:
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
