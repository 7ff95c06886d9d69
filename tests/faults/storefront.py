"""Storefront API clients: reserve on hot and cold SKUs, reserve carts, and release, commit
or extend their own holds. Half the POSTs carry an Idempotency-Key; those (and the calls
that cannot apply twice: release, commit, extend) are retried on a lost answer, a 503, a
500 and `idempotency_in_progress`. A new hold without a key is never retried: a client
without a key cannot know whether the first one was made."""
from __future__ import annotations

import random
import threading
import time
from collections import deque

import requests

from .answers import (BARE, IN_PROGRESS, NO_ANSWER, OK, REFUSED, SERVER_ERROR, UNAVAILABLE,
                      Attempt, Request, Tally, perform, retry_after)
from .shop import Shop

TIMEOUT = (3, 8)
MAX_REQUESTS = 3000  # per client thread: a bound on the loop besides its end time
TTLS = (60, 120, 600)


def classify(response: requests.Response) -> Attempt:
    status = response.status_code
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return Attempt(status, BARE)
    try:
        body = response.json()
    except ValueError:
        return Attempt(status, BARE)
    error = body.get("error") if isinstance(body, dict) else None
    if 200 <= status < 300:
        verdict = OK
    elif status == 409 and error == "idempotency_in_progress":
        verdict = IN_PROGRESS
    elif status == 503:
        verdict = UNAVAILABLE
    elif status >= 500:
        verdict = SERVER_ERROR
    else:
        verdict = REFUSED
    return Attempt(status, verdict, body, retry_after(response))


def send(session: requests.Session, base: str, tally: Tally, request: Request) -> Attempt:
    headers = {"Authorization": f"Bearer {request.token}"}
    if request.key is not None:
        headers["Idempotency-Key"] = request.key
    try:
        response = session.post(base + request.path, json=request.body, headers=headers,
                                timeout=TIMEOUT)
    except requests.RequestException as error:
        attempt = Attempt(None, NO_ANSWER, error=type(error).__name__)
    else:
        attempt = classify(response)
    tally.add("api", "POST", request.path, attempt)
    return attempt


def may_retry(request: Request) -> bool:
    return request.key is not None or request.kind in ("release", "commit", "extend")


class Storefront(threading.Thread):
    def __init__(self, n: int, base: str, shop: Shop, carts: deque, run: str, until: float,
                 tally: Tally, seed: int):
        super().__init__(name=f"storefront-{n}", daemon=True)
        self.n, self.base, self.shop, self.carts, self.run_id = n, base, shop, carts, run
        self.until, self.tally = until, tally
        self.token = shop.tokens[n % len(shop.tokens)]  # one client's holds stay with it
        self.rng = random.Random(seed)
        self.requests: list[Request] = []
        self.session = requests.Session()
        self._count = 0

    def run(self):
        try:
            held: list[int] = []
            while time.monotonic() < self.until and self._count < MAX_REQUESTS:
                request = self._next(held)
                perform(request, lambda r: send(self.session, self.base, self.tally, r),
                        may_retry(request), self.rng)
                self.requests.append(request)
                self._remember(request, held)
                time.sleep(self.rng.uniform(0.02, 0.15))
        except Exception as error:  # noqa: BLE001  (reported as the harness's failure)
            self.tally.harness_error(f"{self.name}: {type(error).__name__}: {error}")
        finally:
            self.session.close()

    def _new(self, kind: str, path: str, body: dict, owner: dict) -> Request:
        self._count += 1
        key = f"{self.run_id}-{self.n}-{self._count}" if self.rng.random() < 0.5 else None
        return Request(kind, f"api-{self.n}", path, body, owner, key=key, token=self.token)

    def _next(self, held: list[int]) -> Request:
        tag = f"{self.run_id}-{self.n}-{self._count + 1}"
        roll = self.rng.random()
        if held and roll < 0.35:
            hold = held[self.rng.randrange(len(held))]
            kind = self.rng.choices(("release", "commit", "extend"), (4, 3, 3))[0]
            if kind != "extend":
                held.remove(hold)  # ended (or about to be): never acted on again
            if kind == "extend":
                return self._new(kind, f"/api/v1/reservations/{hold}/extend",
                                 {"ttl_seconds": 900}, {"hold": hold})
            reason = f"fault {kind} {tag}"
            return self._new(kind, f"/api/v1/reservations/{hold}/{kind}", {"reason": reason},
                             {"hold": hold, "reason": reason})
        if roll < 0.55:
            try:
                cart = self.carts.popleft()
            except IndexError:
                cart = None
            if cart is not None:
                return self._new("cart", f"/api/v1/carts/{cart}/reserve", {"ttl_seconds": 120},
                                 {"cart": cart, "lines": self.shop.carts[cart]})
        product = self.rng.choice(self.shop.hot if self.rng.random() < 0.5 else self.shop.cold)
        session_key = f"flt-{tag}"
        body = {"sku": product.sku, "quantity": self.rng.randint(1, 3),
                "ttl_seconds": self.rng.choice(TTLS), "session_key": session_key}
        return self._new("reserve", "/api/v1/reservations", body, {"session_key": session_key})

    @staticmethod
    def _remember(request: Request, held: list[int]) -> None:
        answer = request.last
        if answer.verdict != OK:
            return
        if request.kind == "reserve":
            held.append(answer.body["id"])
        elif request.kind == "cart":
            held.extend(hold["id"] for hold in answer.body)

