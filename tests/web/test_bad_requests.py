"""Findings of the probe that were 5xx: each hostile input is now a clear 4xx."""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from dashboard import create_app
from dashboard.extensions import db
from tests.helpers.app import app_config
from tests.helpers.web import HX


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.fixture
def admin(client_for):
    return client_for("admin")


def test_an_unparseable_htmx_page_address_still_goes_to_sign_in(client):
    response = client.get("/stock", headers={**HX, "HX-Current-URL": "http://[::1"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/sign-in")


@pytest.mark.parametrize("url", [
    "/holds?sku=a%00b", "/holds?owner=%00", "/activity?sku=%00", "/activity.csv?sku=x%00",
    "/stock?q=%00", "/alerts?after=%00",
])
def test_nul_in_a_query_is_refused_with_400(admin, url):
    response = admin.get(url)
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("action, data", [
    ("adjust", {"delta": "5", "reason": "nul \x00 byte"}),
    ("count", {"counted": "5", "expected": "10", "note": "bad \x00 note"}),
    ("import", {"step": "apply", "csv_text": "sku,on_hand\nRED-1\x00,3\n", "on_hand_seen": "10"}),
])
def test_nul_in_a_form_is_refused_with_400_and_changes_nothing(admin, product_factory, action,
                                                               data):
    product = product_factory("RED-1", on_hand=10)
    url = "/stock/import" if action == "import" else f"/stock/{product.id}/{action}"
    assert admin.post(url, data=data).status_code == 400
    db.session.expire_all()
    assert db.session.get(type(product), product.id).on_hand == 10


@pytest.mark.parametrize("sort", ["sku", "name"])
def test_a_stock_cursor_holding_a_lone_surrogate_starts_from_the_first_page(admin, sort):
    lone_surrogate = _cursor(r'["\ud800",1]')  # JSON for a lone surrogate
    response = admin.get(f"/stock?sort={sort}&after={lone_surrogate}")
    assert response.status_code == 200


@pytest.mark.parametrize("url", ["/holds?after=" + "9" * 30, "/alerts?after=" + "9" * 30,
                                 "/activity?after=" + "9" * 30, "/stock?after=" + "9" * 30])
def test_a_30_digit_cursor_is_the_first_page(admin, url):
    assert admin.get(url).status_code == 200


@pytest.mark.parametrize("url", [
    f"/holds/{2**63}/release", f"/holds/{2**63}/extend", f"/alerts/{2**31}/acknowledge",
    f"/alerts/{2**31}/resolve", f"/admin/api-clients/{2**31}/active",
    f"/admin/staff/{2**31}/role", f"/stock/{2**31}/adjust", f"/holds/{'9' * 30}/release",
])
def test_ids_beyond_their_column_are_not_found(admin, url):
    assert admin.post(url, data={"reason": "x", "active": "0", "role": "viewer"}).status_code == 404


@pytest.mark.parametrize("action, data", [
    ("role", {"role": "viewer"}), ("active", {"active": "0"}),
    ("password", {"password": "long-enough-pw-1"}), ("sessions", {}),
])
def test_a_missing_staff_member_is_not_found(admin, action, data):
    response = admin.post(f"/admin/staff/999999/{action}", data=data)
    assert response.status_code == 404


def test_a_missing_api_client_is_not_found(admin):
    assert admin.post("/admin/api-clients/999999/active", data={"active": "0"}).status_code == 404
    assert admin.post("/admin/api-clients/999999/storefronts",
                      data={"all_storefronts": "1"}).status_code == 404


def test_a_csv_field_over_the_csv_limit_is_a_form_error(admin, product_factory):
    product_factory("RED-1")
    body = "sku,on_hand\nRED-1,\"" + "x" * 140_000 + "\"\n"
    response = admin.post("/stock/import", data={"step": "apply", "csv_text": body,
                                                       "on_hand_seen": "10"})
    assert response.status_code == 422
    assert "not valid CSV" in response.get_data(as_text=True)


def test_a_body_over_the_limit_is_413_saying_the_limit(app, client):
    app.config["MAX_CONTENT_LENGTH"], before = 1024 * 1024, app.config["MAX_CONTENT_LENGTH"]
    try:
        response = client.post("/sign-in", data={"email": "x" * 2_000_000, "password": "y"})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = before
    assert response.status_code == 413
    assert "the limit is 1 MB" in response.get_data(as_text=True)
    assert "Content-Security-Policy" in response.headers


def test_the_default_body_limit_fits_the_import(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 32 * 1024 * 1024
    assert app.config["MAX_FORM_MEMORY_SIZE"] >= 2_000_000


def test_an_error_page_renders_after_the_transaction_aborted(database_url, staff_factory):
    """A view whose SQL failed: the 500 page is ours, with the security headers."""
    staff_factory("viewer", email="vera@example.com")
    db.session.commit()
    broken = create_app(app_config(database_url, PROPAGATE_EXCEPTIONS=False))

    @broken.get("/broken")
    def _broken():
        db.session.execute(text("SELECT no_such_column FROM staff_users"))

    with broken.app_context():
        response = broken.test_client().get("/broken")
        db.session.remove()
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_every_error_page_has_the_security_headers(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers
    secure = client.get("/sign-in", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
