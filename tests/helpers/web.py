"""Helpers for dashboard tests: signing in, a live server and real Chromium.

Import into a test module (tests/ is on sys.path when pytest runs):

    from tests.helpers.web import (HX, chromium, client, csrf_app, live_server, login, new_client,
                             sign_in, sign_in_page)

- `login(client, user)`: puts the staff member in the test client's session (no password
  hashing, no throttle); `sign_in(client, email, password)` goes through the real form.
- `client`: a test client of the `app` fixture (CSRF off); `new_client(app)` for more.
  `app.test_client()` gives the same StaffClient (set in conftest), for the reason it explains.
- `HX`: headers of an htmx request (`client.get(url, headers=HX)` gets the partial).
- `csrf_app`: a second app on the SAME database with CSRF switched on.
- `live_server`: that app served on 127.0.0.1:<free port> from a thread in this process,
  so it sees what the test wrote; yields the base URL.
- `chromium`: a headless Chromium (Playwright) closed after the test;
  `sign_in_page(chromium, base_url, email, password)` returns a signed-in Page.

SQLite note: every transaction takes the write lock there (BEGIN IMMEDIATE), even a read.
Requests to `app` share the test's session, but `csrf_app` and the live server have their
own: read what you need (ids), then `db.session.rollback()` before calling them.
"""
from __future__ import annotations

import threading

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from dashboard import create_app
from tests.helpers.app import app_config

HX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/"}
PASSWORD = "correct-horse-1"  # the staff_factory default


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


def login(client, user) -> None:
    """Sign `user` in on this test client by writing the Flask-Login session directly."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def new_client(app) -> StaffClient:
    return app.test_client()


def sign_in(client, email: str, password: str = PASSWORD, environ_base=None, **fields):
    """POST the sign-in form (extra form fields as keywords); returns the response (not followed)."""
    data = {"email": email, "password": password, **fields}
    return client.post("/sign-in", data=data, environ_base=environ_base or {})


@pytest.fixture
def client(app):
    return new_client(app)


@pytest.fixture(scope="session")
def csrf_app(database_url):
    """The app with CSRF enforced, sharing the test database (already migrated by `app`)."""
    csrf_app = create_app(app_config(database_url, WTF_CSRF_ENABLED=True))
    csrf_app.test_client_class = StaffClient
    return csrf_app


@pytest.fixture
def live_server(app, csrf_app):
    """Serve `csrf_app` on 127.0.0.1 in a thread; yields 'http://127.0.0.1:<port>'."""
    server = make_server("127.0.0.1", 0, csrf_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def chromium():
    """Headless Chromium from /usr/bin/chromium, closed (with Playwright) after the test."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


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
