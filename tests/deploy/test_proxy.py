"""Behind a reverse proxy: PROXY_HOPS decides whose X-Forwarded-* headers are believed.

The proxy is 10.0.0.2 (REMOTE_ADDR); with PROXY_HOPS=1 the last X-Forwarded-For entry,
the one the proxy appended, is the client. With PROXY_HOPS=0 (the default) the headers are
anyone's to write and change nothing.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import StaffUser
from dashboard.services import jobs
from tests.helpers.app import app_config
from tests.helpers.web import PASSWORD, StaffClient

PROXY = {"REMOTE_ADDR": "10.0.0.2"}


@pytest.fixture(scope="module")
def proxied(database_url):
    """The app as deployed behind one proxy (nginx), on the test database."""
    app = create_app(app_config(database_url, PROXY_HOPS=1, SERVER_NAME=None))
    app.test_client_class = StaffClient
    return app


def forwarded(client_ip: str, **more) -> dict:
    return {"X-Forwarded-For": client_ip, **more}


def sign_in(client, email: str, headers: dict, password: str = PASSWORD, **fields):
    return client.post("/sign-in", data={"email": email, "password": password, **fields},
                       headers=headers, environ_base=PROXY)


def last_login_ip(user_id: int) -> str | None:
    db.session.rollback()
    return db.session.get(StaffUser, user_id, populate_existing=True).last_login_ip


def staff(staff_factory, email: str) -> int:
    user_id = staff_factory(role="viewer", email=email).id
    db.session.rollback()  # SQLite: let the other app's requests take the write lock
    return user_id


def test_last_login_ip_is_the_client_behind_a_trusted_proxy(proxied, staff_factory):
    user_id = staff(staff_factory, "vera@example.com")
    # The client wrote its own X-Forwarded-For; the proxy appended the address it saw.
    headers = forwarded("6.6.6.6, 198.51.100.7")
    assert sign_in(proxied.test_client(), "vera@example.com", headers).status_code == 302
    assert last_login_ip(user_id) == "198.51.100.7"


def test_a_spoofed_forwarded_for_changes_nothing_without_trusted_proxies(app, staff_factory):
    assert app.config["PROXY_HOPS"] == 0
    user_id = staff(staff_factory, "vera@example.com")
    headers = forwarded("198.51.100.7", **{"X-Forwarded-Proto": "https"})
    assert sign_in(app.test_client(), "vera@example.com", headers).status_code == 302
    assert last_login_ip(user_id) == "10.0.0.2"


def test_sign_in_throttling_counts_each_client_behind_the_proxy(proxied, staff_factory):
    staff(staff_factory, "vera@example.com")
    client = proxied.test_client()
    limit = proxied.config["LOGIN_ADDRESS_MAX_FAILURES"]  # guesses at many accounts
    for i in range(limit):
        wrong = sign_in(client, f"guess{i}@example.com", forwarded("198.51.100.7"), "wrong")
        assert wrong.status_code == 401
    assert sign_in(client, "other@example.com", forwarded("198.51.100.7"), "x").status_code == 429
    # Another shopper's staff member behind the same proxy is not locked out with them.
    assert sign_in(client, "vera@example.com", forwarded("203.0.113.9")).status_code == 302


def test_spoofing_forwarded_for_does_not_escape_the_throttle_without_trusted_proxies(app):
    client = app.test_client()
    limit = app.config["LOGIN_ADDRESS_MAX_FAILURES"]  # guesses at many accounts
    for i in range(limit):
        headers = forwarded(f"198.51.100.{i}")
        assert sign_in(client, f"guess{i}@example.com", headers, "wrong").status_code == 401
    assert sign_in(client, "next@example.com", forwarded("198.51.100.99"), "x").status_code == 429


def test_https_is_detected_behind_tls_termination(database_url, staff_factory):
    # Flask-WTF checks the Referer on HTTPS requests only: refusing a foreign one proves the
    # app sees the request as HTTPS on shop.example, not HTTP on the proxy's upstream address.
    secure = create_app(app_config(database_url, PROXY_HOPS=1, SERVER_NAME=None,
                                   WTF_CSRF_ENABLED=True))
    staff(staff_factory, "vera@example.com")
    tls = forwarded("198.51.100.7", **{"X-Forwarded-Proto": "https",
                                        "X-Forwarded-Host": "shop.example"})
    client = secure.test_client()
    page = client.get("/sign-in", headers=tls, environ_base=PROXY)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)

    foreign = sign_in(client, "vera@example.com", {**tls, "Referer": "https://evil.example/"},
                      csrf_token=token)
    assert foreign.status_code == 400
    own = sign_in(client, "vera@example.com", {**tls, "Referer": "https://shop.example/sign-in"},
                  csrf_token=token)
    assert own.status_code == 302


def test_the_forwarded_host_keeps_an_htmx_sign_in_on_the_page_it_came_from(proxied, app):
    headers = {"HX-Request": "true", "HX-Current-URL": "https://shop.example/holds?sku=A",
               "X-Forwarded-Host": "shop.example", "X-Forwarded-Proto": "https",
               **forwarded("198.51.100.7")}
    behind = proxied.test_client().get("/holds", headers=headers, environ_base=PROXY)
    assert behind.status_code == 401
    assert behind.headers["HX-Redirect"] == "/sign-in?next=/holds?sku%3DA"


def test_healthz_keeps_its_meaning_behind_the_proxy(proxied):
    client = proxied.test_client()
    headers = forwarded("198.51.100.7", **{"X-Forwarded-Proto": "https"})
    assert client.get("/healthz", headers=headers, environ_base=PROXY).status_code == 503
    jobs.beat(datetime.now(timezone.utc))
    db.session.rollback()
    answers = [client.get(path, headers=headers, environ_base=PROXY)
               for path in ("/healthz", "/healthz/web")]
    assert [a.status_code for a in answers] == [200, 200]
