"""The faults, on a schedule fixed by a seed: PostgreSQL restarted (fast, and at least once
immediate), app backends terminated, a gunicorn worker and the scheduler SIGKILLed."""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass

from .cluster import HARNESS_APP_NAME, Cluster
from .processes import Gunicorn, Schedulers

TERMINATE_EVERY, RESTART_EVERY, WORKER_EVERY, SCHEDULER_EVERY = 5.0, 20.0, 15.0, 20.0
BURST_SECONDS = 1.0  # how long a fault watches for a backend serving a request
# The app's client backends, each 'ended' (its transaction ended in the last 20 ms: maybe
# the instant after a COMMIT, its answer not yet sent), 'in_flight' (a statement or a
# transaction running) or 'resting' (an idle pooled connection).
_APP_BACKENDS = (
    "SELECT pid, client_port, CASE WHEN state <> 'idle' THEN 'in_flight'"
    " WHEN state_change >= clock_timestamp() - interval '20 ms' THEN 'ended' ELSE 'resting' END"
    " FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> %s"
)


@dataclass(order=True)
class Fault:
    at: float
    kind: str


def schedule(seconds: float, rng: random.Random) -> list[Fault]:
    """Each kind at its own period with some jitter, offset so they rarely coincide; the
    restarts alternate fast and immediate, so a run of 20 s or more has an immediate one."""
    faults = []

    def every(period: float, first: float, kind):
        at, n = first, 0
        while at < seconds - 1:
            faults.append(Fault(round(at + rng.uniform(-1, 1), 2), kind(n) if callable(kind) else kind))
            at, n = at + period, n + 1

    every(TERMINATE_EVERY, 4.0, "terminate_backends")
    every(RESTART_EVERY, 11.0, lambda n: "restart_immediate" if n % 2 == 0 else "restart_fast")
    every(WORKER_EVERY, 8.0, "kill_worker")
    every(SCHEDULER_EVERY, 16.0, "kill_scheduler")
    return sorted(faults)


class Chaos(threading.Thread):
    def __init__(self, cluster: Cluster, gunicorn: Gunicorn, schedulers: Schedulers,
                 faults: list[Fault], rng: random.Random):
        super().__init__(name="chaos", daemon=True)
        self.cluster, self.gunicorn, self.schedulers = cluster, gunicorn, schedulers
        self.faults, self.rng = faults, rng
        self.done: Counter = Counter()       # kind -> injected
        self.missed: Counter = Counter()     # kind -> could not be injected (and why)
        self.backends_terminated = 0
        self.busy_workers_killed = 0
        self._halt = threading.Event()

    def stop(self) -> None:
        """No more faults; returns when the one being made (a restart, say) is done."""
        self._halt.set()
        if self.is_alive():
            self.join(120)

    def run(self):
        started = time.monotonic()
        for fault in self.faults:
            if self._halt.wait(max(0.0, started + fault.at - time.monotonic())):
                return
            try:
                if getattr(self, fault.kind)() is not False:
                    self.done[fault.kind] += 1
            except Exception as error:  # noqa: BLE001  (a fault that could not be made)
                self.missed[f"{fault.kind}: {type(error).__name__}"] += 1

    def restart_fast(self):
        self.cluster.restart("fast")

    def restart_immediate(self):
        self.cluster.restart("immediate")

    def _serving(self, conn, owned_by=None) -> list[int] | None:
        """Backends serving a request: after the end of a transaction (60%, when there are
        some) or in one; None if none is. `owned_by` maps client ports to what to return."""
        rows = conn.execute(_APP_BACKENDS, (HARNESS_APP_NAME,)).fetchall()
        if owned_by is not None:
            rows = [(owned_by[port], port, state) for _, port, state in rows if port in owned_by]
        ended = [pid for pid, _, state in rows if state == "ended"]
        in_flight = [pid for pid, _, state in rows if state == "in_flight"]
        if ended and (not in_flight or self.rng.random() < 0.6):
            return ended
        return in_flight or None

    def _watch(self, find) -> int | None:
        """Poll `find` for up to BURST_SECONDS; one of what it found, or None."""
        deadline = time.monotonic() + BURST_SECONDS
        while time.monotonic() < deadline:
            found = find()
            if found:
                return self.rng.choice(found)
            time.sleep(0.005)
        return None

    def terminate_backends(self):
        """Terminate 1-3 app backends serving a request (an idle one if none is)."""
        killed = 0
        with self.cluster.connect() as conn:
            for _ in range(self.rng.randint(1, 3)):
                pid = self._watch(lambda: self._serving(conn))
                if pid is None:
                    break
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                killed += 1
            if not killed:
                idle = [pid for pid, _, _ in conn.execute(_APP_BACKENDS, (HARNESS_APP_NAME,))]
                if idle:
                    conn.execute("SELECT pg_terminate_backend(%s)", (self.rng.choice(idle),))
                    killed = 1
        self.backends_terminated += killed
        return bool(killed)

    def kill_worker(self):
        """SIGKILL a worker (the master starts another), preferring one whose database
        connection is serving a request: one that may have committed and not answered."""
        with self.cluster.connect() as conn:
            victim = self._watch(
                lambda: self._serving(conn, owned_by=self.gunicorn.workers_by_local_port()))
        if victim is not None:
            self.busy_workers_killed += 1
        else:
            workers = self.gunicorn.workers()
            if not workers:
                return False
            victim = self.rng.choice(workers)
        os.kill(victim, signal.SIGKILL)

    def kill_scheduler(self):
        return self.schedulers.kill_and_replace() is not None
