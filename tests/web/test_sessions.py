"""Staff sessions that really end: one server-side row per device, refused once deleted,
idle or expired; sign out (everywhere), own password changes and admin changes end them."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from dashboard import services
from dashboard.extensions import db
from dashboard.models import StaffSession
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
