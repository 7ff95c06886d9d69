"""The storefront API signs in by bearer token only: no cookie session is read or written on
its routes (dashboard.StaffSessions), so a staff member's cookie stands for no one there."""
from __future__ import annotations


def test_a_signed_in_staff_cookie_is_not_a_storefront_token(client_for):
    staff = client_for("manager")
    assert staff.get("/").status_code == 200  # signed in on the dashboard
    response = staff.get("/api/v1/products/ANY")
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    assert "Set-Cookie" not in response.headers


def test_an_api_answer_sets_no_cookie(api, product_factory):
    product_factory("TEE-1")
    response = api.get("/products/TEE-1")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers


def test_no_cookie_session_is_opened_on_api_routes(app):
    from flask import session
    from flask.sessions import NullSession

    with app.test_request_context("/api/v1/ping", headers={"Cookie": "session=anything"}):
        assert isinstance(session._get_current_object(), NullSession)
    with app.test_request_context("/sign-in"):
        assert not isinstance(session._get_current_object(), NullSession)
