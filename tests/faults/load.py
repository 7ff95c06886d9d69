"""The fault load: storefront clients and staff members for a bounded time, then every
Idempotency-Key sent once more to learn its real outcome."""
from __future__ import annotations

import random
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import requests

from .answers import IN_PROGRESS, RETRY, Attempt, Request, Tally
from .shop import STAFF_SINGLES, Shop
from .staff import Browser, StaffMember, Targets
from .storefront import Storefront, send

STOREFRONTS = 16
REPLAY_WORKERS = 8
# A key whose request died must be answerable again "at once or within seconds".
STUCK_AFTER = 10.0
MAX_REPLAY_ROUNDS = 30


def _post(session: requests.Session, base: str, token: str, path: str, body: dict):
    response = session.post(base + path, json=body, timeout=(3, 15),
                            headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 201:
        raise RuntimeError(f"setup POST {path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def staff_targets(base: str, shop: Shop, run: str) -> Targets:
    """Holds for the staff to release, made through the API before any fault."""
    token, cold = shop.tokens[0], shop.cold

    def single(n: int) -> tuple[int, str]:
        session_key = f"staff-{run}-{n}"
        with requests.Session() as session:
            hold = _post(session, base, token, "/api/v1/reservations",
                         {"sku": cold[n % len(cold)].sku, "quantity": 1, "ttl_seconds": 3600,
                          "session_key": session_key})
        return hold["id"], session_key

    def group(cart: int) -> tuple[int, list[int]]:
        with requests.Session() as session:
            holds = _post(session, base, token, f"/api/v1/carts/{cart}/reserve", {"ttl_seconds": 3600})
        return cart, [hold["id"] for hold in holds]

    with ThreadPoolExecutor(6) as pool:
        singles = list(pool.map(single, range(STAFF_SINGLES)))
        groups = list(pool.map(group, shop.staff_carts))
    return Targets(singles, groups)


class Load:
    def __init__(self, base: str, shop: Shop, run: str, seconds: float, seed: int, tally: Tally):
        self.base, self.shop, self.run, self.seconds, self.tally = base, shop, run, seconds, tally
        self.seed = seed
        self.targets = staff_targets(base, shop, run)
        self.browsers = {}
        for role, (email, password) in shop.staff.items():
            self.browsers[role] = Browser(base, tally)
            self.browsers[role].sign_in(email, password)
        self.threads: list = []

    def start(self) -> None:
        until = time.monotonic() + self.seconds
        carts = deque(self.shop.carts)
        self.threads = [Storefront(n, self.base, self.shop, carts, self.run, until, self.tally,
                                   self.seed * 1000 + n) for n in range(STOREFRONTS)]
        self.threads += [StaffMember(role, browser, self.shop, self.targets, self.run, until,
                                     self.seed * 1000 + 100 + n)
                         for n, (role, browser) in enumerate(self.browsers.items())]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        for thread in self.threads:
            thread.until = 0.0

    def join(self) -> None:
        deadline = time.monotonic() + self.seconds + 90
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.tally.harness_error(f"{thread.name} did not finish in time")

    @property
    def requests(self) -> list[Request]:
        return [r for thread in self.threads for r in thread.requests]

    @property
    def skipped_actions(self) -> int:
        return sum(getattr(thread, "skipped", 0) for thread in self.threads)

    @property
    def idle_turns(self) -> int:
        return sum(getattr(thread, "idle", 0) for thread in self.threads)

    def replay_keys(self) -> dict:
        """Send every keyed request once more; one answered "in progress" (or not at all) is
        sent again each second, and is stuck if it still is STUCK_AFTER seconds later."""
        keyed = [r for r in self.requests if r.key is not None]
        pending, rounds, sent, waiting_since = keyed, 0, 0, {}
        rng = random.Random(self.seed)
        with ThreadPoolExecutor(REPLAY_WORKERS) as pool:
            while pending and rounds < MAX_REPLAY_ROUNDS:
                rounds += 1
                sent += len(pending)
                answers = list(pool.map(self._replay_one, pending))
                now = time.monotonic()
                for request, attempt in zip(pending, answers):
                    request.replay = attempt
                    if attempt.verdict in RETRY:
                        waiting_since.setdefault(id(request), now)
                pending = [r for r in pending if r.replay.verdict in RETRY
                           and now - waiting_since[id(r)] < STUCK_AFTER]
                if pending:
                    time.sleep(rng.uniform(0.8, 1.2))
        return {"keys": len(keyed), "sent": sent, "rounds": rounds,
                "stuck": sum(1 for r in keyed if r.replay.verdict == IN_PROGRESS),
                "unanswered": sum(1 for r in keyed if r.replay.verdict in RETRY - {IN_PROGRESS})}

    def _replay_one(self, request: Request) -> Attempt:
        with requests.Session() as session:
            return send(session, self.base, self.tally, request)


def wait_until_serving(base: str, token: str, sku: str, timeout: float = 60) -> None:
    """After the faults: the app answers a query again (a pooled connection may need one
    failure to notice the restart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = requests.get(f"{base}/api/v1/products/{sku}", timeout=(3, 5),
                                  headers={"Authorization": f"Bearer {token}"})
            if answer.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("the app did not serve again within a minute of the last fault")

