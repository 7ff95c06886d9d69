"""Sign-in, sign-out, throttling, safe redirects, lost sessions, CSRF and cookie flags."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from dashboard import create_app, services
from dashboard.extensions import db
from dashboard.models import LoginAttempt, Product, StaffUser
from tests.helpers.app import app_config
from tests.helpers.web import HX, login, new_client, sign_in


def attempts(**where) -> int:
    statement = select(func.count()).select_from(LoginAttempt)
    for column, value in where.items():
        statement = statement.where(getattr(LoginAttempt, column) == value)
    return db.session.scalar(statement)


def staff(email: str) -> StaffUser:
    db.session.expire_all()
    return db.session.scalars(select(StaffUser).where(StaffUser.email == email)).one()


def test_sign_in_page_renders_with_the_form(client):
    response = client.get("/sign-in")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'name="email"' in body and 'name="password"' in body and 'name="remember"' in body


def test_good_credentials_sign_in_and_record_the_time(client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    response = sign_in(client, "Vera@Example.com ")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert staff("vera@example.com").last_login_at is not None
    page = client.get("/").get_data(as_text=True)
    assert "first sign-in" in page and "Overview" in page


def test_second_sign_in_shows_the_previous_one(client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    sign_in(client, "vera@example.com")
    client.post("/sign-out")
    sign_in(client, "vera@example.com", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    page = client.get("/").get_data(as_text=True)
    assert "Your last sign-in was" in page


def test_wrong_password_is_refused_and_counted(client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    response = sign_in(client, "vera@example.com", "wrong-password-1")
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)
    assert attempts(email="vera@example.com") == 1
    assert client.get("/stock").status_code == 302  # still signed out


def test_unknown_email_gets_the_same_message(client):
    response = sign_in(client, "nobody@example.com", "whatever-123")
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)


def test_account_locked_after_max_failures_even_with_the_right_password(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        assert sign_in(client, "vera@example.com", "wrong-password-1").status_code == 401
    last = sign_in(client, "vera@example.com", "wrong-password-1")
    assert "Too many failed sign-ins; try again in 15 minutes" in last.get_data(as_text=True)
    response = sign_in(client, "vera@example.com")  # right password, still refused
    assert response.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes." in response.get_data(as_text=True)
    assert staff("vera@example.com").last_login_at is None
    assert attempts(email="vera@example.com") == limit  # refusals during a lockout are not counted


def test_guesses_from_elsewhere_cannot_lock_the_account(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    for n in range(app.config["LOGIN_MAX_FAILURES"] * 2):
        stranger = new_client(app)
        sign_in(stranger, "vera@example.com", "wrong-password-1",
                environ_base={"REMOTE_ADDR": f"10.9.9.{n}"})
    assert sign_in(client, "vera@example.com").status_code == 302  # her own address: in


def test_guesses_at_one_account_refuse_only_that_account_from_that_address(app, client,
                                                                          staff_factory):
    staff_factory("viewer", email="vera@example.com")
    staff_factory("viewer", email="otto@example.com")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        sign_in(client, "vera@example.com", "wrong-password-1")
    assert sign_in(client, "vera@example.com").status_code == 429
    assert sign_in(new_client(app), "otto@example.com").status_code == 302
    other = new_client(app)
    response = sign_in(other, "vera@example.com", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 302


def test_made_up_emails_do_not_lock_real_accounts(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    for n in range(app.config["LOGIN_MAX_FAILURES"]):
        assert sign_in(client, f"guess{n}@example.com", "wrong-password-1").status_code == 401
    assert sign_in(client, "vera@example.com").status_code == 302


def _failures_from(ip: str, count: int, latest_ago: int) -> None:
    at = datetime.now(timezone.utc) - timedelta(seconds=latest_ago)
    db.session.add_all(LoginAttempt(email=f"guess{n}@example.com", ip=ip, attempted_at=at)
                       for n in range(count))
    db.session.commit()


def test_an_address_over_its_limit_is_slowed_for_every_account(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    limit = app.config["LOGIN_ADDRESS_MAX_FAILURES"]
    _failures_from("127.0.0.1", limit + 3, latest_ago=0)  # 2**3 s after the latest
    response = sign_in(client, "vera@example.com")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 8
    assert "try again in" in response.get_data(as_text=True) and "second" in response.get_data(
        as_text=True)
    elsewhere = sign_in(new_client(app), "vera@example.com",
                        environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert elsewhere.status_code == 302


def test_the_address_delay_grows_with_its_failures_up_to_the_cap(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    limit, cap = app.config["LOGIN_ADDRESS_MAX_FAILURES"], app.config["LOGIN_MAX_DELAY_SECONDS"]
    waits = []
    for over, ip in ((2, "10.1.0.1"), (4, "10.1.0.2"), (20, "10.1.0.3")):
        _failures_from(ip, limit + over, latest_ago=0)
        response = sign_in(new_client(app), "vera@example.com", environ_base={"REMOTE_ADDR": ip})
        assert response.status_code == 429
        waits.append(int(response.headers["Retry-After"]))
    assert waits[0] < waits[1] < waits[2] == cap


def test_an_address_whose_delay_has_passed_may_sign_in(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    _failures_from("127.0.0.1", app.config["LOGIN_ADDRESS_MAX_FAILURES"] + 2, latest_ago=30)
    assert sign_in(client, "vera@example.com").status_code == 302


def test_a_long_email_that_grows_when_lower_cased_is_refused_not_an_error(client):
    email = "İ" * 240 + "@x.io"  # 245 characters; lower-cased, 485
    response = sign_in(client, email, "wrong-password-1")
    assert response.status_code == 401
    assert attempts() == 1


def test_failures_older_than_the_window_do_not_count_and_are_pruned(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    old = datetime.now(timezone.utc) - timedelta(seconds=app.config["LOGIN_WINDOW_SECONDS"] + 5)
    db.session.add_all(
        LoginAttempt(email="vera@example.com", ip="127.0.0.1", attempted_at=old)
        for _ in range(app.config["LOGIN_MAX_FAILURES"])
    )
    db.session.commit()
    assert sign_in(client, "vera@example.com", "wrong-password-1").status_code == 401
    assert attempts() == 1  # the old rows were pruned by the new failure
    assert sign_in(client, "vera@example.com").status_code == 302


def test_minutes_left_count_from_the_oldest_blocking_failure(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    window = app.config["LOGIN_WINDOW_SECONDS"]
    at = datetime.now(timezone.utc) - timedelta(seconds=window - 150)  # ages out in 2.5 min
    db.session.add_all(
        LoginAttempt(email="vera@example.com", ip="127.0.0.1", attempted_at=at)
        for _ in range(app.config["LOGIN_MAX_FAILURES"])
    )
    db.session.commit()
    response = sign_in(client, "vera@example.com")
    assert response.status_code == 429
    assert "try again in 3 minutes" in response.get_data(as_text=True)


def test_success_clears_the_account_failures(app, client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        sign_in(client, "vera@example.com", "wrong-password-1")
    assert sign_in(client, "vera@example.com").status_code == 302
    assert attempts(email="vera@example.com") == 0


def test_inactive_staff_cannot_sign_in(client, staff_factory):
    user = staff_factory("viewer", email="vera@example.com")
    services.set_staff_active(user.id, False)
    assert sign_in(client, "vera@example.com").status_code == 401


def test_deactivation_ends_an_existing_session(client, staff_factory):
    user = staff_factory("viewer", email="vera@example.com")
    sign_in(client, "vera@example.com")
    assert client.get("/stock").status_code == 200
    services.set_staff_active(user.id, False)
    response = client.get("/stock")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


@pytest.mark.parametrize("target, expected", [
    ("/stock?filter=low", "/stock?filter=low"),
    ("https://evil.example/x", "/"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
])
def test_next_only_goes_to_local_paths(client, staff_factory, target, expected):
    staff_factory("viewer", email="vera@example.com")
    response = sign_in(client, "vera@example.com", next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_signed_out_page_visit_comes_back_after_sign_in(client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    response = client.get("/stock?filter=out")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/sign-in?next=")
    form = client.get(location).get_data(as_text=True)
    next_value = re.search(r'name="next" type="hidden" value="([^"]*)"', form).group(1)
    assert next_value == "/stock?filter=out"
    assert sign_in(client, "vera@example.com", next=next_value).headers["Location"] == "/stock?filter=out"


def test_lost_session_on_htmx_request_redirects_to_sign_in_and_back(client):
    response = client.get("/stock?q=abc", headers={**HX, "HX-Current-URL": "http://localhost/stock?filter=low"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/sign-in?next=/stock?filter%3Dlow"


def test_already_signed_in_visitors_skip_the_form(client, staff_factory):
    login(client, staff_factory("viewer"))
    response = client.get("/sign-in?next=/stock")
    assert response.status_code == 302 and response.headers["Location"] == "/stock"


def test_sign_out_ends_the_session(client, staff_factory):
    login(client, staff_factory("viewer"))
    assert client.get("/stock").status_code == 200
    response = client.post("/sign-out")
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert client.get("/stock").status_code == 302


def test_sign_out_is_post_only(client, staff_factory):
    login(client, staff_factory("viewer"))
    assert client.get("/sign-out").status_code == 405
    assert client.get("/stock").status_code == 200


@pytest.mark.parametrize("email, password", [
    ("<script>alert(1)</script>", "correct-horse-1"),
    ("x" * 300 + "@example.com", "correct-horse-1"),
    ("vera@example.com", "p" * 2000),
    ("", ""),
])
def test_hostile_sign_in_input_is_a_form_error(client, staff_factory, email, password):
    staff_factory("viewer", email="vera@example.com")
    response = sign_in(client, email, password)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert 'aria-invalid="true"' in body
    assert attempts() == 0 and staff("vera@example.com").last_login_at is None


def test_security_headers_on_pages(client):
    headers = client.get("/sign-in").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_is_http_only_and_lax(client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    sign_in(client, "vera@example.com")
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_cookies_are_secure_outside_debug_and_testing(database_url):
    production = create_app(app_config(database_url, TESTING=False))
    assert production.config["SESSION_COOKIE_SECURE"] is True
    testing = create_app(app_config(database_url))
    assert not testing.config.get("SESSION_COOKIE_SECURE")
    local_http = create_app(app_config(database_url, TESTING=False, COOKIE_SECURE=False))
    assert not local_http.config["SESSION_COOKIE_SECURE"]


# --- CSRF (a second app on the same database, with CSRF on) ------------------------------

def _csrf_token(client, url="/sign-in") -> str:
    body = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body) or re.search(
        r'"X-CSRFToken": "([^"]+)"', body)
    return match.group(1)


def test_sign_in_without_csrf_token_is_refused(csrf_app, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    db.session.rollback()
    client = new_client(csrf_app)
    response = sign_in(client, "vera@example.com")
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert staff("vera@example.com").last_login_at is None


def test_sign_in_with_csrf_token_works(csrf_app, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    db.session.rollback()
    client = new_client(csrf_app)
    token = _csrf_token(client)
    assert sign_in(client, "vera@example.com", csrf_token=token).status_code == 302


def test_htmx_post_without_csrf_header_refreshes_and_changes_nothing(csrf_app, staff_factory, product_factory):
    product_id = product_factory(on_hand=10).id
    client = new_client(csrf_app)
    login(client, staff_factory("merchandiser"))
    db.session.rollback()  # SQLite: csrf_app has its own session; don't hold the write lock
    response = client.post(f"/stock/{product_id}/adjust", data={"delta": "-3", "reason": "x"}, headers=HX)
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"
    assert db.session.get(Product, product_id).on_hand == 10
    db.session.rollback()
    assert "This form has expired" in client.get("/stock").get_data(as_text=True)  # after the refresh


def test_htmx_post_with_the_page_csrf_header_is_accepted(csrf_app, staff_factory, product_factory):
    product_id = product_factory(on_hand=10).id
    client = new_client(csrf_app)
    login(client, staff_factory("merchandiser"))
    db.session.rollback()
    token = _csrf_token(client, "/stock")
    response = client.post(f"/stock/{product_id}/adjust", data={"delta": "-3", "reason": "x"},
                           headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert db.session.get(Product, product_id).on_hand == 7


def test_sign_out_needs_csrf(csrf_app, staff_factory):
    client = new_client(csrf_app)
    login(client, staff_factory("viewer"))
    db.session.rollback()
    assert client.post("/sign-out").status_code == 400
    assert client.get("/stock").status_code == 200


def test_concurrent_guesses_cannot_exceed_the_limit(app, staff_factory, requires_postgres):
    """Ten guesses at once from several workers: at most LOGIN_MAX_FAILURES passwords are tried."""
    import threading

    staff_factory("viewer", email="vera@example.com")
    db.session.rollback()
    barrier, statuses = threading.Barrier(10), []

    def guess():
        client = new_client(app)
        barrier.wait()
        with app.app_context():
            statuses.append(sign_in(client, "vera@example.com", "wrong-password-1").status_code)

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(statuses) == 10 and set(statuses) <= {401, 429}
    assert statuses.count(401) <= app.config["LOGIN_MAX_FAILURES"]
    assert attempts(email="vera@example.com") == statuses.count(401)


def test_login_address_redirects_to_sign_in(client):
    response = client.get("/login?next=/holds")
    assert response.status_code == 301 and response.headers["Location"] == "/sign-in?next=/holds"


def test_a_wrong_password_puts_the_keyboard_on_password(client, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    body = sign_in(client, "vera@example.com", "wrong-password-1").get_data(as_text=True)
    password = re.search(r'<input[^>]*name="password"[^>]*>', body).group(0)
    email = re.search(r'<input[^>]*name="email"[^>]*>', body).group(0)
    assert "autofocus" in password and "autofocus" not in email
    fresh = client.get("/sign-in").get_data(as_text=True)
    assert "autofocus" in re.search(r'<input[^>]*name="email"[^>]*>', fresh).group(0)
