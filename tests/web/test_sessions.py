"""Staff sessions that really end: one server-side row per device, refused once deleted,
idle or expired; sign out (everywhere), own password changes and admin changes end them."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, StaffSession
from tests.helpers.web import PASSWORD, login, new_client, sign_in


def _rows(staff_id: int | None = None) -> list[StaffSession]:
    db.session.expire_all()
    statement = select(StaffSession).order_by(StaffSession.id)
    if staff_id is not None:
        statement = statement.where(StaffSession.staff_id == staff_id)
    return db.session.scalars(statement).all()


def _session_id(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


def _signed_in(client) -> bool:
    return client.get("/stock").status_code == 200


def _age(**changes) -> None:
    db.session.execute(update(StaffSession).values(**changes))
    db.session.commit()


def test_the_cookie_carries_only_a_random_session_id_stored_hashed(client, staff_factory):
    user = staff_factory("viewer", email="vera@example.com")
    assert sign_in(client, "vera@example.com").status_code == 302
    token = _session_id(client)
    assert not token.startswith(f"{user.id}:") and len(token) >= 40  # not the account's id
    [row] = _rows(user.id)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.user_agent and row.ip == "127.0.0.1" and not row.remember


def test_an_old_account_id_session_is_refused(client, staff_factory):
    user = staff_factory("viewer")
    with client.session_transaction() as session:
        session["_user_id"] = f"{user.id}:1"  # the old id:session_version form
    assert not _signed_in(client)


def test_a_cookie_copied_before_sign_out_stops_working(app, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    device, thief = new_client(app), new_client(app)
    sign_in(device, "vera@example.com")
    thief.set_cookie("session", device.get_cookie("session").value)
    assert _signed_in(thief)
    device.post("/sign-out")
    assert not _signed_in(thief) and not _signed_in(device)
    assert _rows() == []


def test_remember_me_is_a_persistent_cookie_for_the_same_row_and_no_remember_token(app,
                                                                                staff_factory):
    user = staff_factory("viewer", email="vera@example.com")
    plain, remembered = new_client(app), new_client(app)
    sign_in(plain, "vera@example.com")
    sign_in(remembered, "vera@example.com", remember="y")
    assert plain.get_cookie("remember_token") is None
    assert remembered.get_cookie("remember_token") is None
    assert plain.get_cookie("session").expires is None  # ends with the browser
    persistent = remembered.get_cookie("session")
    assert persistent.expires is not None and persistent.http_only
    rows = {row.remember: row for row in _rows(user.id)}
    assert rows[True].expires_at - rows[True].created_at == timedelta(days=14)
    assert rows[False].expires_at - rows[False].created_at == timedelta(hours=12)


def test_an_idle_session_is_refused_but_a_remembered_one_is_not(app, staff_factory):
    user = staff_factory("viewer")
    plain, remembered = new_client(app), new_client(app)
    login(plain, user)
    login(remembered, user, remember=True)
    _age(last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=481))
    assert not _signed_in(plain)
    assert _signed_in(remembered)


def test_a_session_past_its_lifetime_is_refused(client, staff_factory):
    login(client, staff_factory("viewer"), remember=True)
    _age(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert not _signed_in(client)


def test_last_seen_is_written_at_most_once_a_minute(client, staff_factory):
    login(client, staff_factory("viewer"))
    earlier = datetime.now(timezone.utc) - timedelta(seconds=30)
    _age(last_seen_at=earlier)
    assert _signed_in(client)
    assert _rows()[0].last_seen_at == earlier
    _age(last_seen_at=earlier - timedelta(minutes=1))
    assert _signed_in(client)
    assert _rows()[0].last_seen_at > earlier


def test_sign_out_everywhere_ends_every_device(app, staff_factory):
    user, other = staff_factory("viewer"), staff_factory("viewer", email="other@example.com")
    devices = [new_client(app) for _ in range(3)]
    for device in devices:
        login(device, user)
    bystander = new_client(app)
    login(bystander, other)
    response = devices[0].post("/account/sign-out-everywhere")
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert not any(_signed_in(device) for device in devices)
    assert _signed_in(bystander) and len(_rows()) == 1


def test_the_account_page_shows_the_forms(client, staff_factory):
    login(client, staff_factory("viewer"))
    body = client.get("/account").get_data(as_text=True)
    assert 'name="current"' in body and "Sign out everywhere" in body


def test_changing_ones_password_needs_the_current_one(client, staff_factory):
    user = staff_factory("viewer", email="vera@example.com")
    login(client, user)
    response = client.post("/account/password",
                           data={"current": "wrong-password-1", "password": "brand-new-pass-9"})
    assert response.status_code == 422
    assert "not your current password" in response.get_data(as_text=True)
    assert services.verify_password("vera@example.com", PASSWORD) is not None


def test_changing_ones_password_signs_out_the_other_devices_only(app, staff_factory):
    user = staff_factory("viewer", email="vera@example.com")
    here, elsewhere = new_client(app), new_client(app)
    login(here, user)
    login(elsewhere, user)
    response = here.post("/account/password",
                         data={"current": PASSWORD, "password": "brand-new-pass-9"})
    assert response.status_code == 302
    assert _signed_in(here) and not _signed_in(elsewhere)
    assert services.verify_password("vera@example.com", "brand-new-pass-9") is not None


@pytest.mark.parametrize("data", [
    {"current": PASSWORD, "password": "short"},
    {"current": PASSWORD, "password": PASSWORD},
    {"current": "", "password": "brand-new-pass-9"},
])
def test_a_bad_new_password_is_a_form_error(client, staff_factory, data):
    user = staff_factory("viewer", email="vera@example.com")
    login(client, user)
    assert client.post("/account/password", data=data).status_code == 422
    assert services.verify_password("vera@example.com", PASSWORD) is not None


def test_sign_in_renews_the_csrf_secret(csrf_app, staff_factory):
    staff_factory("viewer", email="vera@example.com")
    db.session.commit()
    db.session.rollback()
    client = csrf_app.test_client()
    import re

    body = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body).group(1)
    with client.session_transaction() as session:
        before = session["csrf_token"]
    response = client.post("/sign-in", data={"email": "vera@example.com", "password": PASSWORD,
                                             "csrf_token": token})
    assert response.status_code == 302
    client.get("/")
    with client.session_transaction() as session:
        assert session.get("csrf_token") not in (None, before)


def test_deleted_staff_sessions_go_with_the_account(staff_factory):
    user = staff_factory("viewer")
    services.start_session(user.id, remember=False, user_agent=None, ip=None,
                           now=datetime.now(timezone.utc))
    assert db.session.scalar(select(func.count()).select_from(StaffSession)) == 1


# --- a submit after the session ended (issue 14): say why, come back to the form ------------

def _submit_after(client, product_id: int):
    return client.post(f"/stock/{product_id}/adjust", data={"delta": "3", "reason": "delivery"},
                       headers={"Referer": "http://localhost/stock?filter=low"})


@pytest.mark.parametrize("end, why", [
    (lambda user: services.set_role(user.id, "viewer"), "Your session was ended elsewhere"),
    (lambda user: services.reset_password(user.id, "a-brand-new-pw-1"), "an admin changed your role or password"),
    (lambda user: _age(last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=481)),
     "timed out after 480 minutes without use"),
    (lambda user: _age(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)),
     "reached its time limit (12 hours"),
])
def test_a_submit_after_the_session_ended_says_why_and_returns_to_the_form(
        client, staff_factory, product_factory, end, why):
    product = product_factory("RED-1", on_hand=10)
    user = staff_factory("merchandiser", email="mia@example.com")
    login(client, user)
    end(user)
    response = _submit_after(client, product.id)
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=/stock?filter%3Dlow&resume=1"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert why in page and "what you typed is kept" in page
    assert 'name="resume" type="hidden" value="1"' in page
    assert db.session.get(Product, product.id).on_hand == 10  # nothing was applied

    password = "a-brand-new-pw-1" if "password" in why else PASSWORD
    signed_in = sign_in(client, "mia@example.com", password, next="/stock?filter=low", resume="1")
    assert signed_in.headers["Location"] == "/stock?filter=low"
    back = client.get("/stock?filter=low").get_data(as_text=True)
    assert "data-restore-drafts hidden>What you typed before signing in is back" in back


def test_a_plain_page_visit_without_a_session_is_not_told_it_lost_anything(client):
    response = client.get("/stock")
    assert "resume" not in response.headers["Location"]
    assert "what you typed" not in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_way_back_after_a_lost_session_is_only_ever_a_local_page(client, staff_factory, product_factory):
    product = product_factory("RED-1", on_hand=10)
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "3", "reason": "x"},
                           headers={"Referer": "https://evil.example/stock"})
    assert response.headers["Location"] == "/sign-in?resume=1"


def test_an_htmx_submit_after_sign_out_elsewhere_redirects_with_the_reason(client, staff_factory, product_factory):
    product = product_factory("RED-1", on_hand=10)
    user = staff_factory("merchandiser")
    login(client, user)
    services.end_sessions(user.id)
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "3", "reason": "x"},
                           headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/products/RED-1"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/sign-in?next=/products/RED-1&resume=1"
    assert "Your session was ended elsewhere" in client.get("/sign-in").get_data(as_text=True)


def test_a_submit_from_a_tab_signed_out_in_another_goes_to_sign_in_not_form_expired(
        csrf_app, staff_factory, product_factory):
    product_id = product_factory("RED-1", on_hand=10).id
    user = staff_factory("merchandiser")
    db.session.rollback()
    client = new_client(csrf_app)
    login(client, user)
    body = client.get("/stock").get_data(as_text=True)
    token = body.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    client.post("/sign-out", data={"csrf_token": token})  # the other tab: the cookie is cleared
    response = client.post(f"/stock/{product_id}/adjust", data={
        "delta": "3", "reason": "x", "csrf_token": token}, headers={"Referer": "http://localhost/stock"})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in?next=/stock&resume=1"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were signed out (in another tab or window)" in page
    db.session.rollback()
    assert db.session.get(Product, product_id).on_hand == 10
