"""Issue 9: exactly once, even when the database or a worker dies mid-request.

About a minute of storefront and staff load through a real gunicorn while this test's own
PostgreSQL is restarted, app backends are terminated, a worker and the scheduler are
SIGKILLed. Afterwards, with the test's own SQL: I1-I6 hold; every logical request took
effect at most once, and exactly once when it was answered 2xx; every Idempotency-Key,
sent again, answers with its real outcome (never stuck in progress); no answer was a 500
or gunicorn's bare error page (a 503 is fine while the database is down).

FAULTS=0 runs the same load without faults (the harness's own check), FAULT_SECONDS sets
the length of the load, FAULT_SEED the schedule of the faults and of the load.
"""
from __future__ import annotations

import os
import random
import secrets
import socket
import time
import uuid
from contextlib import ExitStack

import pytest

from .answers import Tally
from .chaos import Chaos, schedule
from .checks import invariant_violations, judge, scheduler_figures
from .cluster import Cluster
from .load import Load, wait_until_serving
from .processes import Gunicorn, Schedulers
from .report import failures, figures, log_exceptions
from .shop import make_shop

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(600)]

SECONDS = float(os.environ.get("FAULT_SECONDS", "60"))
FAULTS_ON = os.environ.get("FAULTS", "1") != "0"
SEED = int(os.environ.get("FAULT_SEED", "9"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(DATABASE_URL=database_url, SECRET_KEY=secrets.token_urlsafe(32), COOKIE_SECURE="0",
               PYTHONUNBUFFERED="1", EXPIRE_INTERVAL="5", ALERTS_INTERVAL="10",
               RECONCILE_INTERVAL="30")
    return env


def test_under_faults_each_request_takes_effect_at_most_once_and_says_so(fault_report, tmp_path):
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("the fault test needs PostgreSQL binaries and runs in the PostgreSQL pass")
    rng = random.Random(SEED)
    run = uuid.uuid4().hex[:6]
    tally = Tally()
    phases, started = {}, time.monotonic()

    def phase(name: str) -> None:
        nonlocal started
        phases[name], started = time.monotonic() - started, time.monotonic()

    with ExitStack() as running:
        cluster = Cluster(free_port())
        running.callback(cluster.destroy)
        cluster.init()
        env = app_env(cluster.url())
        gunicorn = Gunicorn(env, free_port(), tmp_path / "gunicorn.log")  # boots meanwhile
        running.callback(gunicorn.stop)
        shop = make_shop(cluster, env, rng)
        gunicorn.wait_ready()
        schedulers = Schedulers(env, tmp_path)
        running.callback(schedulers.stop)
        schedulers.start()
        phase("cluster and shop")

        load = Load(gunicorn.base, shop, run, SECONDS, SEED, tally)
        running.callback(load.stop)
        chaos = Chaos(cluster, gunicorn, schedulers, schedule(SECONDS, rng) if FAULTS_ON else [], rng)
        running.callback(chaos.stop)
        phase("staff holds and sign-ins")
        load.start()
        chaos.start()
        load.join()
        chaos.stop()
        phase("load")

        if not cluster.is_running():
            cluster.start()
        wait_until_serving(gunicorn.base, shop.tokens[0], shop.products[0].sku)
        replay = load.replay_keys()
        phase("recovery and key replays")
        with cluster.connect() as conn:
            verdicts = judge(conn, load.requests)
            invariants = invariant_violations(conn)
            scheduler = scheduler_figures(conn)
        logs = log_exceptions(tmp_path.glob("*.log"))
        phase("checks")
    phase("clean-up")

    facts = dict(tally=tally, replay=replay, verdicts=verdicts, invariants=invariants)
    table = figures(seconds=SECONDS, seed=SEED, faults_on=FAULTS_ON, faults=dict(chaos.done),
                    backends=chaos.backends_terminated,
                    busy_workers=chaos.busy_workers_killed, missed=dict(chaos.missed), load=load,
                    logs=logs, phases=phases, scheduler=scheduler, **facts)
    fault_report(table)  # printed in the terminal summary
    problems = failures(**facts)
    assert not problems, "\n".join(["under faults:", *problems, f"(the app's logs: {tmp_path})"])
