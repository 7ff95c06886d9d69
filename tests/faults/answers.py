"""One logical request and its attempts; how an HTTP answer is read; retrying the same
request (same Idempotency-Key, same form body) a bounded number of times."""
from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

OK = "ok"                      # 2xx (staff: also a redirect after the submit)
REFUSED = "refused"            # 4xx: a refusal that says what happened
IN_PROGRESS = "in_progress"    # "still being answered, retry after ..."
UNAVAILABLE = "unavailable"    # 503: the database is down; fine during the faults
SERVER_ERROR = "server_error"  # 500 (or another 5xx) from the app
BARE = "bare"                  # gunicorn's bare HTML page, or a non-JSON API answer
NO_ANSWER = "no_answer"        # timeout or connection reset: outcome unknown
SIGNED_OUT = "signed_out"      # a staff request sent back to the sign-in page
CONCLUSIVE = {OK, REFUSED}
RETRY = {IN_PROGRESS, UNAVAILABLE, SERVER_ERROR, BARE, NO_ANSWER}
# Refusals no request of this load should ever get (a harness bug, or the app's).
UNEXPECTED_STATUSES = {400, 401, 403, 404, 405, 413, 415}

MAX_ATTEMPTS = 8
REQUEST_DEADLINE = 15.0  # seconds for all attempts of one logical request
MAX_RETRY_AFTER = 3.0


@dataclass
class Attempt:
    status: int | None
    verdict: str
    body: object = None
    retry_after: float | None = None
    error: str | None = None


@dataclass
class Request:
    """One logical request: what a client or a person meant to do once."""

    kind: str                 # reserve, cart, release, commit, extend, adjust, count, ...
    actor: str                # "api-3", "merchandiser", ...
    path: str
    body: object              # JSON (API) or the form's fields in order (staff)
    owner: dict               # what its effect is found by in SQL
    key: str | None = None    # Idempotency-Key
    token: str | None = None
    htmx: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    replay: Attempt | None = None  # the Idempotency-Key sent once more after the faults

    @property
    def is_api(self) -> bool:
        return self.token is not None

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1


def route(path: str) -> str:
    return re.sub(r"/\d+", "/<id>", path.split("?")[0])


class Tally:
    """Every HTTP answer of the run, by who asked and what came back (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.verdicts: Counter = Counter()        # (api|staff, verdict)
        self.statuses: Counter = Counter()        # (api|staff, status or "none")
        self.errors: Counter = Counter()          # (method route, status, verdict) of 5xx
        self.unexpected: Counter = Counter()      # (method route, status)
        self.harness_errors: list[str] = []

    def add(self, who: str, method: str, path: str, attempt: Attempt) -> None:
        where = f"{method} {route(path)}"
        with self._lock:
            self.verdicts[who, attempt.verdict] += 1
            self.statuses[who, attempt.status or "none"] += 1
            if attempt.verdict in (SERVER_ERROR, BARE):
                self.errors[where, attempt.status, attempt.verdict] += 1
            if attempt.status in UNEXPECTED_STATUSES or attempt.verdict == SIGNED_OUT:
                self.unexpected[where, attempt.status] += 1

    def harness_error(self, text: str) -> None:
        with self._lock:
            self.harness_errors.append(text)


def is_bare_page(response: requests.Response) -> bool:
    text = response.text.lstrip()
    return text.startswith("<html>") and "<h1><p>" in text[:300]


def retry_after(response: requests.Response) -> float | None:
    try:
        return min(MAX_RETRY_AFTER, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def perform(request: Request, send, may_retry: bool, rng: random.Random) -> Request:
    """Send `request` until it gets a conclusive answer, or attempts or time run out."""
    started = time.monotonic()
    for n in range(MAX_ATTEMPTS):
        attempt = send(request)
        request.attempts.append(attempt)
        if attempt.verdict not in RETRY or not may_retry:
            break
        pause = attempt.retry_after or min(2.0, 0.2 * 2 ** n) * rng.uniform(0.75, 1.25)
        if time.monotonic() + pause - started > REQUEST_DEADLINE:
            break
        time.sleep(pause)
    return request
