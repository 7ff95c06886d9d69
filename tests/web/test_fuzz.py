"""Hostile input to every route: no answer is a 5xx, and a refused request changes nothing.

Every rule of `app.url_map` (the storefront API included) is called with hostile values in
its path, its query and its form (or JSON body), signed out and signed in as each role.
The parameter names are every name a view or query reads, found in the source, plus every
form field: a new parameter is fuzzed without editing this file. Each request sets all of
them at once; a second pass, as an admin, sets a few at a time.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter

from dashboard import services
from dashboard.extensions import db
from dashboard.models import (
    ApiClient, Location, Product, Reservation, StaffUser, StockMovement, WebhookEndpoint,
)
from dashboard.services import SYSTEM, Owner
from dashboard.services.locations import create_location
from dashboard.web import forms, location_forms
from tests.helpers.app import ROOT
from tests.helpers.web import login

ROLES = ("viewer", "merchandiser", "support", "manager", "admin")
# Ending one's own session would sign the fuzzing client out half-way; tested elsewhere.
SKIPPED = {"auth.sign_out", "account.sign_out_everywhere", "static"}


def _cursor(value) -> str:
    raw = ('["' + value + '",1]').encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE = [
    "\x00", "a\x00b", "9" * 30, str(2**63), str(2**31), "-1", "x" * 5000, "%%%", "_%_",
    "\u202e\u202dRTL", "İ" * 245, "../../admin", "\ufffd",
    _cursor("\\ud800"),  # a keyset cursor whose text is a lone surrogate
]
GROUP = 4  # parameters per request in the one-at-a-time pass
# The other roles and the signed-out visitor mostly meet the same checks earlier (403, the
# sign-in page): a few values each keep the whole file under two minutes.
FEW = ["\x00", "9" * 30, "x" * 5000, "_%_", "\u202e\u202dRTL", HOSTILE[-1]]
PATH_IDS = ["9" * 30, str(2**63), str(2**31), "0"]


def _parameter_names() -> list[str]:
    names = set()
    pattern = re.compile(r"""(?:args|values|form|source)\.get(?:list)?\(\s*["']([a-z_]+)["']""")
    for folder in ("dashboard/web", "dashboard/queries"):
        for path in (ROOT / folder).glob("*.py"):
            names.update(pattern.findall(path.read_text()))
    for form in [*vars(forms).values(), *vars(location_forms).values()]:
        if isinstance(form, type) and issubclass(form, FlaskForm) and form is not FlaskForm:
            names.update(name for name, _ in form._unbound_fields or [])
            names.update(name for name in vars(form) if not name.startswith("_")
                         and hasattr(getattr(form, name), "field_class"))
    names.discard("csrf_token")
    return sorted(names)


API_FIELDS = ["sku", "quantity", "ttl_seconds", "session_key", "customer_id", "cart_id",
              "order_id", "reason", "location"]


@pytest.fixture
def world(staff_factory, product_factory, now):
    """A record for every id a path names, and an API client's token."""
    red = product_factory("RED-1", on_hand=10, threshold=2)
    product_factory("OUT-1", on_hand=0, threshold=2)
    hold = services.reserve(red.sku, 1, Owner(session_key="fuzz"), now=now)
    target = staff_factory("viewer", email="target@example.com")
    client, token = services.create_api_client("fuzz shop", now=now)
    alert_id = db.session.scalar(select(func.min(services.alerts.StockAlert.id)))
    # Straight in: the service would check the URL against an allow-list the tests don't set.
    endpoint = WebhookEndpoint(url="https://hooks.example/stock", events="out_of_stock",
                               secret="s" * 32, is_active=True, created_at=now)
    db.session.add(endpoint)
    store = create_location("STORE-1", "Fuzz store", actor=SYSTEM, now=now)
    transfer = services.create_transfer("MAIN", "STORE-1", [("RED-1", 1)], actor=SYSTEM, now=now)
    db.session.commit()
    return {"endpoint_id": endpoint.id, "transfer_id": transfer.id, "hold_id": hold.id, "staff_id": target.id, "client_id": client.id,
            "product_id": red.id, "alert_id": alert_id, "reservation_id": hold.id,
            "location_id": store.id, "cart_id": 1, "order_id": 1, "sku": "RED-1", "name": "expire", "token": token}


def fingerprint() -> tuple:
    """Ledger lines, holds (and active ones), stock, staff, clients and locations (and open
    ones), in one query."""
    counts = [select(func.count()).select_from(model).scalar_subquery()
              for model in (StockMovement, Reservation, StaffUser, ApiClient, Location)]
    active = (select(func.count()).select_from(Reservation)
              .where(Reservation.status == "active").scalar_subquery())
    open_locations = (select(func.count()).select_from(Location)
                      .where(Location.is_active).scalar_subquery())
    stock = [select(func.coalesce(func.sum(column), 0)).scalar_subquery()
             for column in (Product.on_hand, Product.reserved)]
    row = db.session.execute(select(*counts, active, open_locations, *stock)).one()
    db.session.commit()
    return tuple(row)


def _rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED:
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            yield rule, method


def _path(rule, world, hostile: str | None) -> str:
    """The rule's URL: real ids (or an out-of-range one), hostile text in text segments."""
    values = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            values[name] = str(world[name]) if hostile is None or not hostile.isdigit() else hostile
        else:
            values[name] = quote(hostile if hostile is not None else str(world[name]), safe="")
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule.rule)


def _send(client, rule, method, world, value, names):
    headers = {}
    if rule.rule.startswith("/api/"):
        headers["Authorization"] = f"Bearer {world['token']}"
    path = _path(rule, world, value)
    query = {name: value for name in names}
    if method == "GET":
        response = client.get(path, query_string=query, headers=headers)
    elif rule.rule.startswith("/api/"):
        response = client.post(path, json={k: value for k in API_FIELDS}, query_string=query,
                               headers=headers)
    else:
        response = client.post(path, data=query, query_string=query, headers=headers)
    response.get_data()  # a streamed answer (the CSV) runs to its end here
    response.close()
    return response


def _check(response, before, rule, method, value):
    label = f"{method} {rule.rule} with {value[:20]!r}"
    # The health probe says 503 while no scheduler beats: its answer, not a failure.
    healthy = response.status_code == 503 and rule.endpoint.startswith("health.")
    assert response.status_code < 500 or healthy, f"{label}: {response.status_code}"
    if response.status_code >= 400:
        assert fingerprint() == before, f"{label} was refused ({response.status_code}) but changed something"


@pytest.mark.parametrize("role", [None, *ROLES])
def test_hostile_values_in_every_route_are_never_a_server_error(app, client, staff_factory,
                                                                world, role):
    names = _parameter_names()
    if role is not None:
        login(client, staff_factory(role, email=f"fuzz-{role}@example.com"))
    before = fingerprint()
    for rule, method in _rules(app):
        for value in HOSTILE if role == "admin" else FEW:
            response = _send(client, rule, method, world, value, names)
            _check(response, before, rule, method, value)
            if response.status_code < 400:
                before = fingerprint()
        for raw in PATH_IDS if rule._converters else []:
            response = _send(client, rule, method, world, raw, [])
            _check(response, before, rule, method, raw)


def test_each_parameter_alone_is_never_a_server_error(app, client, staff_factory, world):
    """A few parameters at a time (one hostile value each, the rest unset), so a parameter
    refused early cannot hide another's failure."""
    names = _parameter_names()
    groups = [names[start:start + GROUP] for start in range(0, len(names), GROUP)]
    login(client, staff_factory("admin", email="fuzz-admin@example.com"))
    before = fingerprint()
    for r, (rule, method) in enumerate(_rules(app)):
        for n, group in enumerate(groups):
            value = HOSTILE[(n + r) % len(HOSTILE)]  # each group meets every value somewhere
            response = _send(client, rule, method, world, value, group)
            _check(response, before, rule, method, value)
            if response.status_code < 400:
                before = fingerprint()


def test_the_fuzzer_reads_the_parameters_views_read():
    names = _parameter_names()
    assert {"sku", "owner", "after", "q", "ids", "email", "password", "csv_text"} <= set(names)
