"""The app's processes for the fault test: one gunicorn (its workers may be SIGKILLed) and
scheduler processes (each may be SIGKILLed and replaced). Every process is started in a
session of its own, so stopping it also stops whatever it started."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _stop(process: subprocess.Popen, grace: float = 10) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group: a worker or child left behind by its leader
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class Gunicorn:
    def __init__(self, env: dict, port: int, log: Path, workers: int = 3):
        self.base = f"http://127.0.0.1:{port}"
        self._log = open(log, "ab")
        self.log_path = log
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
             "--timeout", "15", "--graceful-timeout", "3", "wsgi:app"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.base + "/api/v1/ping", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start:\n" + self.log_path.read_text()[-3000:])

    def workers(self) -> list[int]:
        return children_of(self.process.pid)

    def workers_by_local_port(self) -> dict[int, int]:
        """{local TCP port: worker pid} of the workers' sockets (their database connections)."""
        inodes = {}
        for worker in self.workers():
            try:
                links = [os.readlink(fd) for fd in Path(f"/proc/{worker}/fd").iterdir()]
            except OSError:  # it just died
                continue
            inodes.update({link[8:-1]: worker for link in links if link.startswith("socket:[")})
        ports = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[9] in inodes:
                    ports[int(fields[1].rsplit(":", 1)[1], 16)] = inodes[fields[9]]
        return ports

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


class Schedulers:
    """`flask --app wsgi scheduler` processes; the newest one is the one in service."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.started: list[subprocess.Popen] = []
        self._logs = []

    def start(self) -> subprocess.Popen:
        log = open(self.log_dir / f"scheduler-{len(self.started)}.log", "ab")
        self._logs.append(log)
        process = subprocess.Popen(
            [str(VENV_BIN / "flask"), "--app", "wsgi", "scheduler"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started.append(process)
        return process

    def kill_and_replace(self) -> int | None:
        """SIGKILL the scheduler in service (mid-job or not) and start a new one."""
        killed = None
        current = self.started[-1] if self.started else None
        if current is not None and current.poll() is None:
            os.killpg(current.pid, signal.SIGKILL)
            current.wait()
            killed = current.pid
        self.start()
        return killed

    def stop(self) -> None:
        for process in self.started:
            _stop(process)
        for log in self._logs:
            log.close()
