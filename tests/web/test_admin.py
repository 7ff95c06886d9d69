"""Admin: staff accounts and API clients; the API token is shown once and never again."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import ApiClient, StaffSession, StaffUser
from tests.helpers.web import HX, login, new_client


@pytest.fixture
def admin(client_for):
    return client_for("admin")


def _staff(email) -> StaffUser | None:
    db.session.expire_all()
    return db.session.scalars(select(StaffUser).where(StaffUser.email == email)).first()


NEW = {"email": "New.Person@Example.com", "name": "New Person", "role": "support",
       "password": "a-long-password-1"}


def test_staff_and_clients_pages_full_and_partial(admin):
    for url in ("/admin/staff", "/admin/api-clients"):
        full = admin.get(url)
        assert full.status_code == 200 and b"<html" in full.data
        part = admin.get(url, headers=HX)
        assert part.status_code == 200 and b"<html" not in part.data


def test_create_staff(admin):
    response = admin.post("/admin/staff", data=NEW, headers=HX)
    assert response.status_code == 200
    assert "new.person@example.com" in response.get_data(as_text=True)
    user = _staff("new.person@example.com")
    assert user.role == "support" and user.is_active
    assert services.verify_password("new.person@example.com", "a-long-password-1") is not None


@pytest.mark.parametrize("change", [
    {"email": ""}, {"email": "not-an-email"}, {"email": "x@" + "y" * 260 + ".com"},
    {"role": "superuser"}, {"password": "short"}, {"password": ""},
    {"name": "<script>" * 30},  # NUL: 400 before any view (test_bad_requests)
])
def test_create_staff_refuses_bad_input(admin, change):
    response = admin.post("/admin/staff", data={**NEW, **change}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'class="error"' in body and "<script><script>" not in body
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 1


def test_duplicate_email_is_a_field_error(admin, staff_factory):
    staff_factory(role="viewer", email="taken@example.com")
    response = admin.post("/admin/staff", data={**NEW, "email": "taken@example.com"}, headers=HX)
    assert response.status_code == 422
    assert "already has an account" in response.get_data(as_text=True)


def _sessions(staff_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(StaffSession).where(StaffSession.staff_id == staff_id))


@pytest.mark.parametrize("url,data", [
    ("role", {"role": "manager"}), ("active", {"active": "0"}),
    ("password", {"password": "brand-new-pass-9"}), ("sessions", {}),
])
def test_staff_changes_sign_the_member_out_everywhere(app, admin, staff_factory, url, data):
    user = staff_factory(role="viewer", email="v@example.com")
    devices = [new_client(app), new_client(app)]
    for device in devices:
        login(device, user)
    assert _sessions(user.id) == 2
    assert admin.post(f"/admin/staff/{user.id}/{url}", data=data, headers=HX).status_code == 200
    assert _sessions(user.id) == 0
    for device in devices:
        assert device.get("/stock").status_code == 302


def test_change_role_deactivate_and_reset_password(admin, staff_factory):
    user = staff_factory(role="viewer", email="v@example.com")
    assert admin.post(f"/admin/staff/{user.id}/role", data={"role": "manager"},
                      headers=HX).status_code == 200
    assert _staff("v@example.com").role == "manager"
    assert admin.post(f"/admin/staff/{user.id}/active", data={"active": "0"},
                      headers=HX).status_code == 200
    assert not _staff("v@example.com").is_active
    assert admin.post(f"/admin/staff/{user.id}/password", data={"password": "brand-new-pass-9"},
                      headers=HX).status_code == 200
    assert admin.post(f"/admin/staff/{user.id}/active", data={"active": "1"},
                      headers=HX).status_code == 200
    assert services.verify_password("v@example.com", "brand-new-pass-9") is not None


@pytest.mark.parametrize("url,data", [
    ("role", {"role": "god"}), ("role", {}), ("active", {"active": "maybe"}),
    ("password", {"password": "short"}), ("password", {"password": "p" * 2000}),
])
def test_staff_changes_refuse_bad_input(admin, staff_factory, url, data):
    user = staff_factory(role="viewer", email="v@example.com")
    before = (user.role, user.is_active, user.password_hash)
    response = admin.post(f"/admin/staff/{user.id}/{url}", data=data, headers=HX)
    assert response.status_code == 422
    fresh = _staff("v@example.com")
    assert (fresh.role, fresh.is_active, fresh.password_hash) == before


def test_an_admin_cannot_lock_themselves_out(admin):
    me = admin.user.id
    assert admin.post(f"/admin/staff/{me}/role", data={"role": "viewer"}, headers=HX
                      ).status_code == 409
    response = admin.post(f"/admin/staff/{me}/active", data={"active": "0"}, headers=HX)
    assert response.status_code == 409 and "ask another admin" in response.get_data(as_text=True)
    fresh = _staff(admin.user.email)
    assert fresh.role == "admin" and fresh.is_active


def test_api_token_is_shown_once_and_never_again(admin):
    response = admin.post("/admin/api-clients", data={"name": "Web shop EU"}, headers=HX)
    assert response.status_code == 200
    token = re.search(r'value="(sr_[^"]+)"', response.get_data(as_text=True)).group(1)
    assert services.client_for_token(token).name == "Web shop EU"
    assert "no-store" in response.headers["Cache-Control"]
    later = admin.get("/admin/api-clients").get_data(as_text=True)
    assert "Web shop EU" in later and token not in later and token[:10] in later


@pytest.mark.parametrize("name", ["", "   ", "n" * 101])
def test_api_client_name_is_required_and_bounded(admin, name):
    response = admin.post("/admin/api-clients", data={"name": name}, headers=HX)
    assert response.status_code == 422 and "sr_" not in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ApiClient)) == 0


def test_duplicate_client_name_is_refused(admin, now):
    services.create_api_client("Shop", now=now)
    response = admin.post("/admin/api-clients", data={"name": "Shop"}, headers=HX)
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)


def test_switching_a_client_off_stops_its_token(admin, now):
    client, token = services.create_api_client("Shop", now=now)
    assert admin.post(f"/admin/api-clients/{client.id}/active", data={"active": "0"},
                      headers=HX).status_code == 200
    assert services.client_for_token(token) is None
    assert admin.post(f"/admin/api-clients/{client.id}/active", data={"active": "x"},
                      headers=HX).status_code == 422
    assert admin.post("/admin/api-clients/9999/active", data={"active": "1"}).status_code == 404


@pytest.mark.parametrize("role", ["viewer", "merchandiser", "support", "manager"])
def test_only_admins_see_or_change_staff_and_clients(app, staff_factory, role):
    client = app.test_client()
    login(client, staff_factory(role=role))
    assert client.get("/admin/staff").status_code == 403
    assert client.get("/admin/api-clients").status_code == 403
    assert client.post("/admin/staff", data=NEW).status_code == 403
    assert client.post("/admin/api-clients", data={"name": "x"}).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(ApiClient)) == 0


FORMS = [
    ("/holds/release", {"ids": ["1"], "reason": "r"}), ("/holds/1/release", {"reason": "r"}),
    ("/holds/1/extend", {"minutes": "5"}), ("/alerts/1/acknowledge", {}),
    ("/alerts/1/resolve", {"note": "n"}), ("/jobs/expire/run", {}),
    ("/jobs/reconcile/repair", {"reason": "r"}), ("/admin/staff", NEW),
    ("/admin/staff/1/role", {"role": "viewer"}), ("/admin/staff/1/active", {"active": "0"}),
    ("/admin/staff/1/password", {"password": "long-enough-pw"}),
    ("/admin/api-clients", {"name": "x"}), ("/admin/api-clients/1/active", {"active": "0"}),
]


@pytest.mark.parametrize("url,data", FORMS)
def test_every_form_needs_the_csrf_token(csrf_app, staff_factory, url, data):
    client = csrf_app.test_client()
    login(client, staff_factory(role="admin"))
    db.session.rollback()  # SQLite: the second app's engine needs the write lock
    response = client.post(url, data=data, headers=HX)
    assert response.status_code == 400 and response.headers["HX-Refresh"] == "true"
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 1
    assert db.session.scalar(select(func.count()).select_from(ApiClient)) == 0


def test_htmx_requests_carry_the_page_token(csrf_app, staff_factory):
    client = csrf_app.test_client()
    login(client, staff_factory(role="admin"))
    db.session.rollback()  # SQLite: the second app's engine needs the write lock
    page = client.get("/admin/api-clients").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = client.post("/admin/api-clients", data={"name": "Shop"},
                           headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(ApiClient)) == 1


def test_a_new_token_has_a_copy_button_and_the_nav_says_api_clients(admin):
    body = admin.post("/admin/api-clients", data={"name": "Web shop"}).get_data(as_text=True)
    assert 'data-copy="#new-token"' in body and "Copy token" in body
    nav = re.search(r'<nav class="topnav".*?</nav>', body, re.S).group(0)
    assert 'aria-current="page">API clients</a>' in nav
    staff_nav = re.search(r'<nav class="topnav".*?</nav>', admin.get("/admin/staff").get_data(as_text=True), re.S).group(0)
    assert 'aria-current="page">Staff</a>' in staff_nav
