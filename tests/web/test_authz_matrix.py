"""The authorization matrix (SPEC §5): every role x every dashboard action, checked on the server.

A forbidden action answers 403 with the role's message and changes nothing (a fingerprint of
every table an action could touch is compared before and after); an allowed one is let
through (and, for the actions whose effect is certain, changes something). Signed-out
visitors are sent to sign-in and change nothing. Pages everyone may see answer 200.
"""
from __future__ import annotations

import hashlib
import io
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import (
    ApiClient, JobRun, Location, Product, Reservation, StaffSession, StaffUser, StockAlert,
    StockMovement, Transfer, TransferLine,
)
from dashboard.services import SYSTEM, Owner
from dashboard.services.locations import create_location
from dashboard.web.access import FORBIDDEN_MESSAGES, PERMISSIONS
from tests.helpers.web import HX, PASSWORD, login

ROLES = ("viewer", "merchandiser", "support", "manager", "admin")

# (name, method, url template, form data, permission, changes-for-sure)
ACTIONS = [
    ("adjust stock", "POST", "/stock/{pid}/adjust", {"delta": "-1", "reason": "authz"}, "edit_stock", True),
    ("count stock", "POST", "/stock/{pid}/count", {"counted": "9", "expected": "10"}, "edit_stock", True),
    ("import page", "GET", "/stock/import", None, "edit_stock", False),
    ("import check", "POST", "/stock/import", "csv-check", "edit_stock", False),
    ("import apply", "POST", "/stock/import", {"step": "apply", "csv_text": "sku,on_hand\nRED-1,8\n",
                                           "on_hand_seen": "10"},
     "edit_stock", True),
    ("product settings", "POST", "/products/RED-1/settings", {"threshold": "7", "is_active": "y"},
     "edit_stock", True),
    ("new product page", "GET", "/products/new", None, "edit_stock", False),
    ("create product", "POST", "/products/new",
     {"sku": "NEW-1", "name": "New", "price": "1.00", "low_stock_threshold": "3", "is_active": "y"},
     "edit_stock", True),
    ("edit product page", "GET", "/products/RED-1/edit", None, "edit_stock", False),
    ("edit product", "POST", "/products/RED-1/edit",
     {"name": "Red", "price": "2.00", "low_stock_threshold": "8", "is_active": "y"}, "edit_stock", True),
    ("deactivate page", "GET", "/products/RED-1/deactivate", None, "edit_stock", False),
    ("deactivate product", "POST", "/products/RED-1/deactivate", {"confirm": "yes"}, "edit_stock", True),
    ("products import page", "GET", "/stock/products-import", None, "edit_stock", False),
    ("products import check", "POST", "/stock/products-import", "products-check", "edit_stock", False),
    ("products import apply", "POST", "/stock/products-import/apply", "products-apply", "edit_stock",
     True),
    ("release holds", "POST", "/holds/release", {"ids": "{hid}", "reason": "authz"}, "manage_holds", True),
    ("a hold's forms", "GET", "/holds/{hid}/actions", None, "manage_holds", False),
    ("release a hold", "POST", "/holds/{hid}/release", {"reason": "authz"}, "manage_holds", True),
    ("extend a hold", "POST", "/holds/{hid}/extend", {"minutes": "5"}, "manage_holds", True),
    ("acknowledge alert", "POST", "/alerts/{aid}/acknowledge", {}, "manage_alerts", True),
    ("resolve alert", "POST", "/alerts/{aid}/resolve", {"note": "authz"}, "manage_alerts", True),
    ("run a job", "POST", "/jobs/expire/run", {}, "run_jobs", True),
    ("repair drift", "POST", "/jobs/reconcile/repair", {"reason": "authz"}, "run_jobs", False),
    ("staff page", "GET", "/admin/staff", None, "manage_staff", False),
    ("create staff", "POST", "/admin/staff",
     {"email": "new@example.com", "name": "New", "role": "viewer", "password": "long-enough-pw-1"},
     "manage_staff", True),
    ("change role", "POST", "/admin/staff/{sid}/role", {"role": "support"}, "manage_staff", True),
    ("deactivate staff", "POST", "/admin/staff/{sid}/active", {"active": "0"}, "manage_staff", True),
    ("reset password", "POST", "/admin/staff/{sid}/password", {"password": "another-long-pw-2"},
     "manage_staff", True),
    ("end staff sessions", "POST", "/admin/staff/{sid}/sessions", {}, "manage_staff", True),
    ("API clients page", "GET", "/admin/api-clients", None, "manage_staff", False),
    ("grant every storefront", "POST", "/admin/api-clients/{cid}/storefronts",
     {"all_storefronts": "1"}, "manage_staff", True),
    ("create API client", "POST", "/admin/api-clients", {"name": "authz shop"}, "manage_staff", True),
    ("deactivate API client", "POST", "/admin/api-clients/{cid}/active", {"active": "0"},
     "manage_staff", True),
    ("locations page", "GET", "/admin/locations", None, "manage_locations", False),
    ("add location", "POST", "/admin/locations",
     {"code": "AUTHZ-1", "name": "Authz shop", "kind": "store", "priority": "5"},
     "manage_locations", True),
    ("edit location page", "GET", "/admin/locations/{lid}/edit", None, "manage_locations", False),
    ("edit location", "POST", "/admin/locations/{lid}/edit",
     {"name": "Renamed", "kind": "warehouse", "priority": "7"}, "manage_locations", True),
    ("close location", "POST", "/admin/locations/{lid}/active", {"active": "0"},
     "manage_locations", True),
    ("make location default", "POST", "/admin/locations/{lid}/default", {}, "manage_locations",
     True),
    ("account page", "GET", "/account", None, "own_account", False),
    ("change own password", "POST", "/account/password",
     {"current": PASSWORD, "password": "my-new-long-pw-3"}, "own_account", True),
    ("sign out everywhere", "POST", "/account/sign-out-everywhere", {}, "own_account", True),
    ("notification settings page", "GET", "/account/notifications", None, "own_account", False),
    ("save notification settings", "POST", "/account/notifications",
     {"mode": "immediate", "everything": "y"}, "own_account", False),
    ("transfer form", "GET", "/transfers/new?sku=TRF-1", None, "move_stock", False),
    ("create transfer", "POST", "/transfers/new",
     {"source": "MAIN", "destination": "STORE-2", "lines-0-sku": "TRF-1", "lines-0-quantity": "1"},
     "move_stock", True),
    ("ship transfer", "POST", "/transfers/{draft}/ship", {}, "move_stock", True),
    ("receive transfer", "POST", "/transfers/{shipped}/receive", {"received-{tpid}": "1"},
     "move_stock", True),
    ("write off transfer", "POST", "/transfers/{shipped}/write-off", {"reason": "authz"},
     "move_stock", True),
    ("cancel transfer", "POST", "/transfers/{cancel}/cancel", {}, "move_stock", True),
    ("who receives what", "GET", "/admin/notifications", None, "manage_staff", False),
    ("webhooks page", "GET", "/admin/webhooks", None, "manage_staff", False),
    ("add webhook", "POST", "/admin/webhooks",
     {"url": "https://hooks.example.com/x", "events": "out_of_stock"}, "manage_staff", False),
]

PAGES = [
    "/", "/overview/tiles", "/stock", "/stock?filter=low", "/products/RED-1", "/holds",
    "/holds?filter=stuck", "/alerts?tab=open", "/alerts?tab=resolved", "/activity", "/activity.csv",
    "/jobs", "/stock?category=Kitchen", "/stock/products.csv", "/transfers",
    "/transfers?status=shipped",
]
PRODUCTS_CSV = b"SKU,Name,Qty\nNEW-2,New two,4\n"


@pytest.fixture
def world(staff_factory, product_factory):
    """One of everything an action can act on; returns the ids the URLs need."""
    now = datetime.now(timezone.utc)
    red = product_factory("RED-1", on_hand=10, threshold=2)
    hold = services.reserve(red.sku, 1, Owner(session_key="authz"), now=now)
    out = product_factory("OUT-1", on_hand=0, threshold=2)
    alert = db.session.scalars(select(StockAlert).where(StockAlert.product_id == out.id)).one()
    target = staff_factory("viewer", email="target@example.com")
    services.start_session(target.id, remember=False, user_agent=None, ip=None, now=now)
    client_row, _token = services.create_api_client("authz client", now=now)
    store = create_location("STORE-1", "Authz store", kind="store", actor=SYSTEM, now=now)
    # Transfers of a product of their own, to a store of their own (an open transfer keeps a
    # location from closing), so no other action's figures move.
    create_location("STORE-2", "Authz transfers", kind="store", actor=SYSTEM, now=now)
    moved = product_factory("TRF-1", on_hand=10, threshold=0)
    draft, shipped, cancel = (
        services.create_transfer("MAIN", "STORE-2", [("TRF-1", 2)], actor=SYSTEM, now=now).id
        for _ in range(3))
    services.transfers.ship(shipped, actor=SYSTEM, now=now)
    return {"pid": red.id, "hid": hold.id, "aid": alert.id, "sid": target.id, "cid": client_row.id,
            "lid": store.id, "tpid": moved.id, "draft": draft, "shipped": shipped,
            "cancel": cancel}


def fingerprint() -> tuple:
    """Everything an action could change, as plain values."""
    db.session.expire_all()

    def rows(*columns, order):
        return tuple(tuple(r) for r in db.session.execute(select(*columns).order_by(order)))

    return (
        rows(Product.id, Product.on_hand, Product.reserved, Product.low_stock_threshold,
             Product.is_active, order=Product.id),
        rows(Reservation.id, Reservation.status, Reservation.expires_at, order=Reservation.id),
        rows(StockAlert.id, StockAlert.status, order=StockAlert.id),
        rows(StaffUser.id, StaffUser.role, StaffUser.is_active, StaffUser.password_hash,
             order=StaffUser.id),
        rows(StaffSession.id, order=StaffSession.id),
        rows(ApiClient.id, ApiClient.is_active, ApiClient.all_storefronts, order=ApiClient.id),
        rows(Location.id, Location.name, Location.kind, Location.priority, Location.is_active,
             Location.is_default, order=Location.id),
        db.session.scalar(select(func.count()).select_from(JobRun)),
        db.session.scalar(select(func.count()).select_from(StockMovement)),
        rows(Transfer.id, Transfer.status, order=Transfer.id),
        rows(TransferLine.id, TransferLine.received, TransferLine.written_off,
             order=TransferLine.id),
    )


def perform(client, action, ids, headers=None):
    _name, method, url, data, _permission, _changes = action
    url = url.format(**ids)
    if method == "GET":
        return client.get(url, headers=headers or {})
    if data == "csv-check":
        return client.post(url, headers=headers or {}, content_type="multipart/form-data",
                           data={"step": "check", "file": (io.BytesIO(b"sku,on_hand\nRED-1,8\n"), "c.csv")})
    if data in ("products-check", "products-apply"):
        form = {"file": (io.BytesIO(PRODUCTS_CSV), "products.csv")}
        if data == "products-apply":
            form["digest"] = hashlib.sha256(PRODUCTS_CSV).hexdigest()
        return client.post(url, headers=headers or {}, content_type="multipart/form-data",
                           data=form)
    form = {k.format(**ids): v.format(**ids) for k, v in data.items()}
    return client.post(url, data=form, headers=headers or {})


def test_the_matrix_covers_every_permission():
    assert {a[4] for a in ACTIONS} == set(PERMISSIONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_role_action(client, staff_factory, world, role, action):
    login(client, staff_factory(role, email=f"actor-{role}@example.com"))
    permission, changes = action[4], action[5]
    before = fingerprint()
    response = perform(client, action, world)
    if role in PERMISSIONS[permission]:
        assert response.status_code not in (401, 403, 404, 405) and response.status_code < 500, (
            f"{role} may {action[0]} but got {response.status_code}")
        if changes:
            assert fingerprint() != before, f"{role} was allowed to {action[0]} but nothing changed"
    else:
        assert response.status_code == 403, f"{role} must not {action[0]}"
        assert FORBIDDEN_MESSAGES[permission] in response.get_data(as_text=True)
        assert fingerprint() == before, f"a refused {action[0]} by {role} changed something"


@pytest.mark.parametrize("action", [a for a in ACTIONS if a[1] == "POST"
                                    and "viewer" not in PERMISSIONS[a[4]]], ids=lambda a: a[0])
def test_forbidden_htmx_action_is_403_with_a_toast_and_no_swap(client, staff_factory, world, action):
    login(client, staff_factory("viewer", email="actor-viewer@example.com"))
    before = fingerprint()
    response = perform(client, action, world, headers=HX)
    assert response.status_code == 403
    assert response.headers["HX-Reswap"] == "none"
    assert FORBIDDEN_MESSAGES[action[4]] in response.headers["HX-Trigger"]
    assert fingerprint() == before


@pytest.mark.parametrize("action", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_signed_out_action_goes_to_sign_in_and_changes_nothing(client, world, action):
    before = fingerprint()
    response = perform(client, action, world)
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    htmx = perform(client, action, world, headers=HX)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/sign-in")
    assert fingerprint() == before


@pytest.mark.parametrize("role", ROLES)
def test_everyone_signed_in_sees_every_page(client, staff_factory, world, role):
    login(client, staff_factory(role, email=f"actor-{role}@example.com"))
    before = fingerprint()
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, f"{role} could not see {url}: {response.status_code}"
    assert fingerprint() == before, "looking at pages changed something"


@pytest.mark.parametrize("url", PAGES)
def test_signed_out_pages_go_to_sign_in(client, world, url):
    response = client.get(url)
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
