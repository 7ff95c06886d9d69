"""The Locations admin page (issue 15): the list with its totals, add, edit, close and
reopen, make default; admins only; bad input shown as field errors, never applied."""
from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Location, StockLevel
from dashboard.services import SYSTEM, Owner
from dashboard.services.locations import create_location
from tests.helpers.web import HX

NEW = {"code": "store-2", "name": "High Street", "kind": "store", "sellable": "y",
       "priority": "20"}


@pytest.fixture
def admin(client_for):
    return client_for("admin")


def locations() -> dict[str, tuple]:
    db.session.expire_all()
    found = {loc.code: (loc.name, loc.kind, loc.sellable, loc.priority, loc.is_active,
                        loc.is_default) for loc in db.session.scalars(select(Location))}
    db.session.commit()
    return found


def toast(response) -> str:
    return json.loads(response.headers["HX-Trigger"])["toast"]["message"]


def test_the_list_shows_each_location_with_its_totals(admin, product_factory, now):
    create_location("STORE-1", "Shop <b>floor</b>", kind="store", priority=10, actor=SYSTEM,
                    now=now)
    red = product_factory("RED-1", on_hand=7)
    product_factory("EMPTY-1", on_hand=0)
    services.adjust(red.id, 3, reason="delivery", location="STORE-1", actor=SYSTEM, now=now)
    services.reserve(red.id, 2, Owner(session_key="s"), location="STORE-1", now=now)

    full = admin.get("/admin/locations")
    assert full.status_code == 200 and b"<html" in full.data
    body = full.get_data(as_text=True)
    assert "Shop &lt;b&gt;floor&lt;/b&gt;" in body and "<b>floor" not in body
    main = body[body.index('id="location-'):body.index("STORE-1</code>")]
    assert "Default" in main and ">7<" in main
    store = body[body.index("STORE-1</code>"):]
    assert all(f">{n}<" in store for n in (3, 2, 1))  # on hand, held, products stocked
    part = admin.get("/admin/locations", headers=HX)
    assert part.status_code == 200 and b"<html" not in part.data and b"STORE-1" in part.data


def test_add_a_location_with_empty_levels_for_every_product(admin, product_factory):
    product_factory("RED-1"), product_factory("BLUE-1")
    response = admin.post("/admin/locations", data=NEW, headers=HX)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "STORE-2" in toast(response) and "STORE-2" in response.get_data(as_text=True)
    assert locations()["STORE-2"] == ("High Street", "store", True, 20, True, False)
    store = db.session.scalar(select(Location.id).where(Location.code == "STORE-2"))
    assert db.session.scalar(select(func.count()).select_from(StockLevel)
                             .where(StockLevel.location_id == store, StockLevel.on_hand == 0)) == 2


@pytest.mark.parametrize("change, field", [
    ({"code": ""}, "code"), ({"code": "two words"}, "code"), ({"code": "X" * 21}, "code"),
    ({"code": "ÄÖ"}, "code"), ({"name": ""}, "name"), ({"name": "n" * 101}, "name"),
    ({"name": "bell\x07"}, "name"), ({"kind": "castle"}, "kind"), ({"priority": "-1"}, "priority"),
    ({"priority": "lots"}, "priority"), ({"priority": "10001"}, "priority"),
])
def test_bad_input_is_a_field_error_and_adds_nothing(admin, change, field):
    before = locations()
    response = admin.post("/admin/locations", data={**NEW, **change}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert f'id="{field}-error"' in body
    assert locations() == before


def test_a_duplicate_code_is_a_field_error(admin):
    response = admin.post("/admin/locations", data={**NEW, "code": "main"}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="code-error"' in body and "MAIN already exists" in body
    assert list(locations()) == ["MAIN"]


def test_markup_in_a_name_is_shown_as_text(admin):
    response = admin.post("/admin/locations", data={**NEW, "name": "<script>x()</script>"},
                          headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "&lt;script&gt;x()&lt;/script&gt;" in body and "<script>x()" not in body


def test_edit_a_location(admin, now):
    store = create_location("STORE-1", "Shop", kind="store", actor=SYSTEM, now=now)
    page = admin.get(f"/admin/locations/{store.id}/edit")
    assert page.status_code == 200 and 'value="Shop"' in page.get_data(as_text=True)
    saved = admin.post(f"/admin/locations/{store.id}/edit",
                       data={"name": "Outlet", "kind": "warehouse", "priority": "3"})
    assert saved.status_code == 302 and saved.headers["Location"] == "/admin/locations"
    assert locations()["STORE-1"] == ("Outlet", "warehouse", False, 3, True, False)
    bad = admin.post(f"/admin/locations/{store.id}/edit",
                     data={"name": " ", "kind": "store", "priority": "3"})
    assert bad.status_code == 422 and 'id="name-error"' in bad.get_data(as_text=True)
    assert locations()["STORE-1"][0] == "Outlet"
    assert admin.get("/admin/locations/999999/edit").status_code == 404


def test_close_and_reopen_an_empty_location(admin, now):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    closed = admin.post(f"/admin/locations/{store.id}/active", data={"active": "0"}, headers=HX)
    assert closed.status_code == 200 and "STORE-1 is closed" in toast(closed)
    assert locations()["STORE-1"][4] is False
    reopened = admin.post(f"/admin/locations/{store.id}/active", data={"active": "1"},
                          headers=HX)
    assert reopened.status_code == 200 and locations()["STORE-1"][4] is True


def test_closing_a_location_with_stock_is_refused(admin, product_factory, now):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    red = product_factory("RED-1", on_hand=0)
    services.adjust(red.id, 4, reason="delivery", location="STORE-1", actor=SYSTEM, now=now)
    refused = admin.post(f"/admin/locations/{store.id}/active", data={"active": "0"},
                         headers=HX)
    assert refused.status_code == 409
    assert "still has 4 units on hand" in toast(refused)
    assert "still has 4 units on hand" in refused.get_data(as_text=True)
    assert locations()["STORE-1"][4] is True
    default = admin.post(f"/admin/locations/{locations_id('MAIN')}/active",
                         data={"active": "0"}, headers=HX)
    assert default.status_code == 409 and "default location" in toast(default)
    assert locations()["MAIN"][4] is True


def locations_id(code: str) -> int:
    found = db.session.scalar(select(Location.id).where(Location.code == code))
    db.session.commit()
    return found


def test_make_default_moves_the_flag(admin, now):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    response = admin.post(f"/admin/locations/{store.id}/default", headers=HX)
    assert response.status_code == 200 and "STORE-1 is now the default" in toast(response)
    found = locations()
    assert found["STORE-1"][5] is True and found["MAIN"][5] is False


def test_a_double_submit_adds_one_location(admin):
    submit = {**NEW, "submit_token": secrets.token_urlsafe(24)}
    first = admin.post("/admin/locations", data=submit, headers=HX)
    again = admin.post("/admin/locations", data=submit, headers=HX)
    assert first.status_code == 200
    assert again.status_code == 200 and again.headers["HX-Reswap"] == "none"
    assert toast(again).startswith("Already applied:")
    assert list(locations()) == ["MAIN", "STORE-2"]


@pytest.mark.parametrize("role", ["viewer", "merchandiser", "support", "manager"])
def test_only_admins_manage_locations(client_for, now, role):
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=now)
    other = client_for(role)
    before = locations()
    for response in (other.get("/admin/locations"),
                     other.post("/admin/locations", data=NEW),
                     other.post(f"/admin/locations/{store.id}/edit", data=NEW),
                     other.post(f"/admin/locations/{store.id}/active", data={"active": "0"}),
                     other.post(f"/admin/locations/{store.id}/default")):
        assert response.status_code == 403
        assert "Only admins can add, change or close locations." in response.get_data(
            as_text=True)
    assert locations() == before
