"""Staff members in a browser: sign in through the real form, then adjust, count and
release through the forms of the stock list and the holds console.

Every submit carries all the hidden inputs of the form it came from and a reason (or count
note) unique to it, so its ledger lines can be counted. On an error or no answer the same
body is submitted again, as a person pressing the button again would, a bounded number
of times. Half the submits are htmx requests (the row comes back), half plain posts (a
redirect comes back, not followed).
"""
from __future__ import annotations

import random
import threading
import time
from collections import deque

import requests

from .answers import (BARE, IN_PROGRESS, NO_ANSWER, OK, REFUSED, SERVER_ERROR, SIGNED_OUT,
                      UNAVAILABLE, Attempt, Request, Tally, is_bare_page, perform, retry_after)
from .forms import Form, form_posting_to, forms_of
from .shop import Shop

TIMEOUT = (3, 10)
PAGE_ATTEMPTS = 6
MAX_ACTIONS = 1000
# What each person does, by weight.
PLANS = {
    "merchandiser": {"adjust": 6, "count": 4},
    "support": {"release": 6, "bulk_release": 4},
    "manager": {"adjust": 3, "count": 2, "release": 3, "bulk_release": 2},
}


def classify(response: requests.Response) -> Attempt:
    status = response.status_code
    if 300 <= status < 400:
        signed_out = "/sign-in" in response.headers.get("Location", "")
        return Attempt(status, SIGNED_OUT if signed_out else OK)
    if status < 300:
        return Attempt(status, OK)
    if status >= 500 and is_bare_page(response):
        return Attempt(status, BARE)
    if status == 503:
        return Attempt(status, UNAVAILABLE, retry_after=retry_after(response))
    if status >= 500:
        return Attempt(status, SERVER_ERROR)
    # A repeated submit still being answered may say so with Retry-After: press again then.
    wait = retry_after(response)
    return Attempt(status, IN_PROGRESS if wait is not None else REFUSED, retry_after=wait)


class Targets:
    """Holds made for the staff before the faults: nobody else touches them."""

    def __init__(self, singles: list[tuple[int, str]], groups: list[tuple[int, list[int]]]):
        self.singles, self.groups = deque(singles), deque(groups)
        self._lock = threading.Lock()

    def single(self) -> tuple[int, str] | None:
        with self._lock:
            return self.singles.popleft() if self.singles else None

    def group(self) -> tuple[int, list[int]] | None:
        with self._lock:
            return self.groups.popleft() if self.groups else None


class Browser:
    """One person's browser: a cookie jar, pages read, forms submitted."""

    def __init__(self, base: str, tally: Tally):
        self.base, self.tally = base, tally
        self.session = requests.Session()

    def sign_in(self, email: str, password: str) -> None:
        """Before the faults: any failure here is the harness's, not the app's."""
        page = self.session.get(self.base + "/sign-in", timeout=TIMEOUT)
        form = form_posting_to(page.text, "/sign-in")
        if page.status_code != 200 or form is None:
            raise RuntimeError(f"no sign-in form (status {page.status_code})")
        body = [*form.hidden, ("email", email), ("password", password)]
        answer = self.session.post(self.base + "/sign-in", data=body, allow_redirects=False,
                                   timeout=TIMEOUT)
        if answer.status_code not in (302, 303) or "/sign-in" in answer.headers.get("Location", ""):
            raise RuntimeError(f"sign-in as {email} failed: {answer.status_code}")

    def page(self, path: str, params: dict, rng: random.Random) -> str | None:
        for n in range(PAGE_ATTEMPTS):
            try:
                response = self.session.get(self.base + path, params=params, timeout=TIMEOUT,
                                            allow_redirects=False)
            except requests.RequestException as error:
                attempt = Attempt(None, NO_ANSWER, error=type(error).__name__)
            else:
                attempt = classify(response)
            self.tally.add("staff", "GET", path, attempt)
            if attempt.verdict == OK and attempt.status == 200:
                return response.text
            if attempt.verdict == SIGNED_OUT:
                return None
            time.sleep(min(2.0, 0.25 * 2 ** n) * rng.uniform(0.75, 1.25))
        return None

    def send(self, request: Request) -> Attempt:
        headers = {"HX-Request": "true"} if request.htmx else {}
        try:
            response = self.session.post(self.base + request.path, data=request.body,
                                         headers=headers, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as error:
            attempt = Attempt(None, NO_ANSWER, error=type(error).__name__)
        else:
            attempt = classify(response)
        self.tally.add("staff", "POST", request.path, attempt)
        return attempt


class StaffMember(threading.Thread):
    def __init__(self, role: str, browser: Browser, shop: Shop, targets: Targets, run: str,
                 until: float, seed: int):
        super().__init__(name=f"staff-{role}", daemon=True)
        self.role, self.browser, self.shop, self.targets = role, browser, shop, targets
        self.run_id, self.until = run, until
        self.rng = random.Random(seed)
        self.requests: list[Request] = []
        self.skipped = 0  # actions given up because their page would not load
        self.idle = 0     # turns with nothing to release (the staff's holds all done)

    def run(self):
        plan = PLANS[self.role]
        try:
            for n in range(MAX_ACTIONS):
                if time.monotonic() >= self.until:
                    break
                action = self.rng.choices(list(plan), list(plan.values()))[0]
                request = getattr(self, action)(f"fault {action} {self.run_id} {self.role}-{n}")
                if request is not None:
                    perform(request, self.browser.send, True, self.rng)
                    self.requests.append(request)
                time.sleep(self.rng.uniform(0.05, 0.3))
        except Exception as error:  # noqa: BLE001  (reported as the harness's failure)
            self.browser.tally.harness_error(f"{self.name}: {type(error).__name__}: {error}")
        finally:
            self.browser.session.close()

    def _request(self, kind: str, form: Form, fields: list[tuple[str, str]], owner: dict):
        return Request(kind, self.role, form.action, [*form.hidden, *fields], owner,
                       htmx=self.rng.random() < 0.5)

    def _form(self, path: str, params: dict, find) -> Form | None:
        """The form `find` picks from the page; None if the page would not load."""
        html = self.browser.page(path, params, self.rng)
        if html is None:
            self.skipped += 1
            return None
        form = find(html)
        if form is None:
            self.browser.tally.harness_error(f"{self.role}: no such form on {path} {params}")
        return form

    def _stock_form(self, verb: str):
        product = self.rng.choice(self.shop.hot if self.rng.random() < 0.4 else self.shop.cold)
        action = f"/stock/{product.id}/{verb}"
        # The row's panel: its adjust and count forms, fetched when a row opens it.
        return product, self._form(f"/stock/{product.id}/change", {},
                                   lambda html: form_posting_to(html, action))

    def adjust(self, reason: str) -> Request | None:
        product, form = self._stock_form("adjust")
        if not form:
            return None
        delta = self.rng.choice((1, 2, 3, 4, -1) if product.hot else (-2, -1, 1, 2, 3))
        return self._request("adjust", form, [("delta", str(delta)), ("reason", reason)],
                             {"reason": reason, "product": product.id})

    def count(self, note: str) -> Request | None:
        product, form = self._stock_form("count")
        if not form:
            return None
        expected = int(dict(form.hidden)["expected"])
        counted = max(0, expected + self.rng.choice((-1, 0, 1, 2)))
        return self._request("count", form, [("counted", str(counted)), ("note", note)],
                             {"reason": note, "product": product.id})

    def release(self, reason: str) -> Request | None:
        target = self.targets.single()
        if target is None:
            self.idle += 1
            return None
        hold, _session_key = target
        # The row's forms, fetched when a row of the list is opened (GET /holds/<id>/actions).
        form = self._form(f"/holds/{hold}/actions", {},
                          lambda html: form_posting_to(html, f"/holds/{hold}/release"))
        if not form:
            return None
        return self._request("staff_release", form, [("reason", reason)],
                             {"reason": reason, "holds": [hold]})

    def bulk_release(self, reason: str) -> Request | None:
        target = self.targets.group()
        if target is None:
            self.idle += 1
            return None
        cart, holds = target
        form = self._form("/holds", {"owner": f"cart {cart}"},
                          lambda html: next((f for f in forms_of(html) if f.id == "bulk-release"), None))
        if not form:
            return None
        ticked = [(name, value) for name, value in form.checkboxes if name == "ids"]
        if sorted(int(v) for _, v in ticked) != sorted(holds):
            self.browser.tally.harness_error(f"cart {cart}: the console lists {ticked}, not {holds}")
            return None
        return self._request("bulk_release", form, [*ticked, ("reason", reason)],
                             {"reason": reason, "holds": holds})
