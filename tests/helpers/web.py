"""Signing staff in and speaking htmx: plain helpers for the web, browser and API tests.

    from tests.helpers.web import HX, login, new_client, sign_in, sign_in_page

- `login(client, user)`: puts the staff member in the test client's session (no password
  hashing, no throttle); `sign_in(client, email, password)` goes through the real form.
- `new_client(app)`: another test client. `app.test_client()` gives the same StaffClient
  (set by the `app` fixture), for the reason its docstring explains.
- `HX`: headers of an htmx request (`client.get(url, headers=HX)` gets the partial).
- `sign_in_page(chromium, base_url, email, password)` returns a signed-in Playwright Page.

The fixtures these go with live in the conftest.py files: `client` in tests/web/,
`csrf_app` (a second app on the SAME database with CSRF switched on) in tests/,
`live_server` and `chromium` in tests/browser/.

SQLite note: every transaction takes the write lock there (BEGIN IMMEDIATE), even a read.
Requests to `app` share the test's session, but `csrf_app` and the live server have their
own: read what you need (ids), then `db.session.rollback()` before calling them.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import g, has_app_context
from flask.testing import FlaskClient

HX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/"}
PASSWORD = "correct-horse-1"  # every staff_factory member's, unless the test picks one


class StaffClient(FlaskClient):
    """A test client whose requests never see the previous request's signed-in user.

    Requests made inside the test's app context reuse it, and with it `g`, where
    Flask-Login caches the user: a second client (or a request after signing out) would
    otherwise act as whoever signed in last.
    """

    def open(self, *args, **kwargs):
        if has_app_context():  # a request from another thread has no context to leak from
            g.pop("_login_user", None)
        return super().open(*args, **kwargs)


def login(client, user, *, remember: bool = False) -> str:
    """Sign `user` in on this test client: a real session row, its id written into the
    Flask-Login session directly (no password hashing, no throttle). Returns the id."""
    token = session_for(user, remember=remember)
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True
    return token


def session_for(user, *, remember: bool = False) -> str:
    """A real signed-in session of `user` (its row committed); returns the id a cookie holds,
    for clients in other threads or apps."""
    from dashboard.services import start_session

    return start_session(user.id, remember=remember, user_agent="test", ip="127.0.0.1",
                         now=datetime.now(timezone.utc))


def new_client(app) -> StaffClient:
    return app.test_client()


def sign_in(client, email: str, password: str = PASSWORD, environ_base=None, **fields):
    """POST the sign-in form (extra form fields as keywords); returns the response (not followed)."""
    data = {"email": email, "password": password, **fields}
    return client.post("/sign-in", data=data, environ_base=environ_base or {})


def sign_in_page(browser, base_url: str, email: str, password: str = PASSWORD):
    """A new page signed in through the real sign-in form (lands on the overview)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    page.goto(base_url + "/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    return page
