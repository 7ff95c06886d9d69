"""Issue 9 on the dashboard: every state-changing form applies once per submit token, says
only what is known, and answers 503 (without the database) in an outage."""
from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select, text, update
from werkzeug.test import EnvironBuilder

from dashboard import create_app, services
from dashboard.extensions import db
from dashboard.models import StockAlert, StockMovement, Submission
from dashboard.services import SYSTEM, Owner
from dashboard.services.housekeeping import prune
from dashboard.services.locations import create_location
from dashboard.services.transaction import in_unit_of_work
from tests.api.test_concurrency import race
from tests.helpers.app import app_config
from tests.helpers.statements import statements
from tests.helpers.web import HX, new_client, session_for


def token() -> str:
    return secrets.token_urlsafe(24)


def snapshot() -> tuple:
    """Everything a staff form can change, in one comparable value."""
    queries = [
        "SELECT count(*) FROM stock_movements",
        "SELECT count(*) FROM staff_users",
        "SELECT count(*), sum(CASE WHEN is_active THEN 1 ELSE 0 END) FROM api_clients",
        "SELECT sum(CASE WHEN is_active THEN 1 ELSE 0 END) FROM staff_users",
        "SELECT sum(low_stock_threshold), sum(on_hand), sum(reserved) FROM products",
        "SELECT count(*), count(category), sum(CASE WHEN is_active THEN 1 ELSE 0 END)"
        " FROM products",
        "SELECT max(expires_at), count(*) FROM reservations WHERE status = 'active'",
        "SELECT count(*) FROM stock_alerts WHERE status = 'acknowledged'",
        "SELECT count(*) FROM stock_alerts WHERE status = 'resolved'",
        "SELECT count(*), sum(priority), sum(CASE WHEN is_active THEN 1 ELSE 0 END),"
        " max(name), sum(CASE WHEN is_default THEN id ELSE 0 END) FROM locations",
    ]
    roles = tuple(db.session.execute(select(text("role"), text("password_hash"))
                                     .select_from(text("staff_users")).order_by(text("id"))))
    found = tuple(tuple(db.session.execute(text(q)).one()) for q in queries)
    db.session.commit()
    return found + (roles,)


def _alert(product) -> StockAlert:
    return db.session.scalars(select(StockAlert).where(StockAlert.product_id == product.id)).one()


def _hold(product, now, key="s"):
    return services.reserve(product.sku, 1, Owner(session_key=key), actor=SYSTEM, now=now)


# Each form: (path, fields) for data made here; `live` holds are made for the real now.
def _forms(product_factory, staff_factory):
    live = datetime.now(timezone.utc)
    red = product_factory("RED-1", on_hand=10)
    low = product_factory("LOW-1", on_hand=1, threshold=3)
    alert = _alert(low)
    one, two, three = _hold(red, live, "a"), _hold(red, live, "b"), _hold(red, live, "c")
    other = staff_factory("support", email="sam@example.com")
    client, _ = services.create_api_client("old shop", now=live)
    store = create_location("STORE-1", "Shop", actor=SYSTEM, now=live)
    db.session.commit()
    return {
        "adjust": (f"/stock/{red.id}/adjust", {"delta": "3", "reason": "delivery"}),
        "count": (f"/stock/{red.id}/count", {"counted": "12", "expected": "10", "note": "n"}),
        "import": ("/stock/import", {"step": "apply", "csv_text": "sku,delta\nRED-1,-4\n",
                               "on_hand_seen": "10"}),
        "release": (f"/holds/{one.id}/release", {"reason": "customer called"}),
        "release_many": ("/holds/release", {"ids": [two.id, three.id], "reason": "tidy"}),
        "extend": (f"/holds/{two.id}/extend", {"minutes": "10"}),
        "acknowledge": (f"/alerts/{alert.id}/acknowledge", {}),
        "resolve": (f"/alerts/{alert.id}/resolve", {"note": "reordered"}),
        "settings": ("/products/RED-1/settings", {"threshold": "4", "is_active": "y"}),
        "new_product": ("/products/new", {"sku": "NEW-1", "name": "New", "price": "1.00",
                                          "low_stock_threshold": "2", "is_active": "y",
                                          "on_hand": "5"}),
        "edit_product": ("/products/RED-1/edit", {"name": "Red", "price": "2.00",
                                                  "category": "Socks",
                                                  "low_stock_threshold": "2", "is_active": "y"}),
        "deactivate_product": ("/products/RED-1/deactivate", {"confirm": "y"}),
        "create_staff": ("/admin/staff", {"email": "new@example.com", "name": "New",
                                          "role": "viewer", "password": "long-enough-pw"}),
        "role": (f"/admin/staff/{other.id}/role", {"role": "merchandiser"}),
        "reset": (f"/admin/staff/{other.id}/password", {"password": "another-long-pw"}),
        "deactivate": (f"/admin/staff/{other.id}/active", {"active": "0"}),
        "create_client": ("/admin/api-clients", {"name": "new shop"}),
        "client_off": (f"/admin/api-clients/{client.id}/active", {"active": "0"}),
        "create_location": ("/admin/locations", {"code": "STORE-2", "name": "Outlet",
                                                 "kind": "store", "priority": "5"}),
        "edit_location": (f"/admin/locations/{store.id}/edit", {"name": "Shop floor",
                                                                "kind": "store",
                                                                "priority": "9"}),
        "close_location": (f"/admin/locations/{store.id}/active", {"active": "0"}),
        "default_location": (f"/admin/locations/{store.id}/default", {}),
    }


@pytest.mark.parametrize("kind", ["adjust", "count", "import", "release", "release_many",
                                  "extend", "acknowledge", "resolve", "settings",
                                  "new_product", "edit_product", "deactivate_product",
                                  "create_staff", "role", "reset", "deactivate",
                                  "create_client", "client_off", "create_location",
                                  "edit_location", "close_location", "default_location"])
def test_a_replayed_submit_applies_once_and_says_what_the_first_did(
        client_for, product_factory, staff_factory, kind):
    admin = client_for("admin")
    path, fields = _forms(product_factory, staff_factory)[kind]
    before = snapshot()
    submit = {**fields, "submit_token": token()}
    first = admin.post(path, data=submit)
    assert first.status_code in (200, 302), first.get_data(as_text=True)[:500]
    if first.status_code == 302:
        said = " ".join(_flashed(admin))
    else:  # the new API client's page, with its token shown once
        said = json.loads(first.headers["HX-Trigger"])["toast"]["message"]
    applied = snapshot()
    assert applied != before  # the first submit took effect

    again = admin.post(path, data=submit)  # the browser resubmits it (a retry after an error)
    assert again.status_code == 302
    assert again.headers["Location"] == first.headers.get("Location", "/")
    assert snapshot() == applied  # ... and nothing more happened
    assert _flashed(admin) == [f"Already applied: {said}"]

    twice = admin.post(path, data=submit, headers=HX)  # a double click (htmx)
    assert twice.status_code == 200 and twice.headers["HX-Reswap"] == "none"
    assert json.loads(twice.headers["HX-Trigger"])["toast"]["message"] == f"Already applied: {said}"
    assert snapshot() == applied


def _flashed(client) -> list[str]:
    with client.session_transaction() as session:
        return [message for _, message in session.pop("_flashes", [])]


def test_a_refused_submit_keeps_its_token_free_and_changes_nothing(client_for, product_factory):
    merchandiser = client_for("merchandiser")
    red = product_factory("RED-1", on_hand=10)
    submit = {"delta": "-50", "reason": "lost", "submit_token": token()}
    refused = merchandiser.post(f"/stock/{red.id}/adjust", data=submit, headers=HX)
    assert refused.status_code in (409, 422)
    before = snapshot()
    again = merchandiser.post(f"/stock/{red.id}/adjust", data={**submit, "delta": "-5"},
                              headers=HX)
    assert again.status_code == 200 and snapshot() != before


def test_an_answered_row_carries_a_fresh_token(client_for, product_factory):
    merchandiser = client_for("merchandiser")
    red = product_factory("RED-1", on_hand=10)
    used = token()
    row = merchandiser.post(f"/stock/{red.id}/adjust", headers=HX,
                            data={"delta": "1", "reason": "found", "submit_token": used})
    tokens = re.findall(r'name="submit_token" value="([^"]+)"', row.get_data(as_text=True))
    assert len(tokens) == 2 and used not in tokens and len(set(tokens)) == 2


def test_a_form_without_its_token_is_refused_when_tokens_are_required(app, client_for,
                                                                      product_factory):
    merchandiser = client_for("merchandiser")
    red = product_factory("RED-1", on_hand=10)
    app.config["SUBMIT_TOKEN_REQUIRED"] = True
    try:
        response = merchandiser.post(f"/stock/{red.id}/adjust", headers=HX,
                                     data={"delta": "1", "reason": "found"})
        # The reloaded list's row opens its panel: fresh forms, each with its token.
        page = merchandiser.get(f"/stock/{red.id}/change", headers=HX).get_data(as_text=True)
    finally:
        app.config["SUBMIT_TOKEN_REQUIRED"] = False
    assert response.status_code == 400 and response.headers["HX-Refresh"] == "true"
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == 1  # creation
    assert 'name="submit_token"' in page


def test_concurrent_submits_of_one_token_apply_once(requires_postgres, app, staff_factory,
                                                    product_factory):
    red = product_factory("RED-1", on_hand=10)
    user_id = session_for(staff_factory("merchandiser"))  # here: the threads have own sessions
    product_id = red.id
    db.session.commit()
    submit = {"delta": "2", "reason": "double click", "submit_token": token()}

    def post(_):
        with app.app_context():
            client = new_client(app)
            with client.session_transaction() as session:
                session["_user_id"], session["_fresh"] = user_id, True
            return client.post(f"/stock/{product_id}/adjust", data=submit, headers=HX).status_code

    statuses = race(6, post)
    assert statuses == [200] * 6, statuses
    lines = db.session.scalar(select(func.count()).select_from(StockMovement)
                              .where(StockMovement.reason == "double click"))
    assert lines == 1


@pytest.mark.parametrize("kind", ["adjust", "count", "release", "release_many", "extend",
                                  "acknowledge", "resolve", "role", "reset", "create_client",
                                  "create_location", "close_location", "default_location"])
def test_no_staff_action_runs_a_statement_after_its_commit(client_for, product_factory,
                                                           staff_factory, kind):
    admin = client_for("admin")
    path, fields = _forms(product_factory, staff_factory)[kind]
    with statements(db.engine) as seen:
        response = admin.post(path, data={**fields, "submit_token": token()}, headers=HX)
    assert response.status_code == 200
    assert seen.commits and seen.after_last_commit == [], seen.after_last_commit


def _closed_app(database_url):
    if database_url.startswith("sqlite"):
        return create_app(app_config("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    url = sa.engine.make_url(database_url).set(port=1).render_as_string(False)
    return create_app(app_config(url))


def test_an_unreachable_database_answers_a_503_page_that_needs_no_database(database_url):
    closed = _closed_app(database_url)
    client = closed.test_client()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = token(), True  # a signed-in device's session id
    page = client.get("/stock")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "Database unavailable" in page.get_data(as_text=True)
    assert "nothing was changed" in page.get_data(as_text=True)
    fragment = client.post("/stock/1/adjust", data={"delta": "1", "reason": "x"}, headers=HX)
    assert fragment.status_code == 503 and fragment.headers["HX-Reswap"] == "none"
    assert json.loads(fragment.headers["HX-Trigger"])["toast"]["level"] == "error"


def test_a_commit_lost_on_the_way_says_it_may_or_may_not_have_been_applied(
        requires_postgres, client_for, product_factory, database_url):
    merchandiser = client_for("merchandiser")
    red = product_factory("RED-1", on_hand=10)
    db.session.commit()
    killer = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")

    def kill_before_the_commit(connection):
        if in_unit_of_work():
            # The server's own pid, asked in the transaction: through PgBouncer the
            # connection's backend_pid is the pooler's, not the server's.
            pid = connection.connection.dbapi_connection.execute(
                "SELECT pg_backend_pid()").fetchone()[0]
            with killer.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    submit = {"delta": "1", "reason": "lost commit", "next": "/stock?q=RED-1",
              "submit_token": token()}
    event.listen(db.engine, "commit", kill_before_the_commit)
    try:
        response = merchandiser.post(f"/stock/{red.id}/adjust", data=submit)
    finally:
        event.remove(db.engine, "commit", kill_before_the_commit)
        killer.dispose()
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "may or may not have been applied" in body and 'href="/stock?q=RED-1"' in body
    assert "nothing was changed" not in body.lower()
    db.session.remove()
    retry = merchandiser.post(f"/stock/{red.id}/adjust", data=submit)  # safe: at most once
    assert retry.status_code == 302
    lines = db.session.scalar(select(func.count()).select_from(StockMovement)
                              .where(StockMovement.reason == "lost commit"))
    assert lines == 1


def test_a_rollback_failing_in_teardown_does_not_replace_the_answer(
        requires_postgres, database_url, staff_factory, product_factory):
    product_factory("RED-1", on_hand=10)
    user_id = session_for(staff_factory("viewer"))
    db.session.commit()
    own = create_app(app_config(database_url))  # its own app context: teardown runs per request
    killer = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")

    @own.after_request
    def terminate_the_backend(response):  # a test hook: the connection dies after the answer
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        return response

    client = own.test_client()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = user_id, True
    try:
        response = client.get("/stock")
    finally:
        killer.dispose()
    assert response.status_code == 200 and "RED-1" in response.get_data(as_text=True)


@pytest.mark.parametrize("path, kind", [("/api/v1/ping", "application/json"),
                                        ("/sign-in", "text/html")])
def test_an_error_escaping_flask_is_answered_in_the_paths_shape_not_a_bare_page(
        database_url, path, kind):
    own = create_app(app_config(database_url, TESTING=False, PROPAGATE_EXCEPTIONS=False))

    @own.teardown_appcontext
    def broken(_error):  # registered last, so it runs first, and Flask does not catch it
        raise RuntimeError("teardown failed")

    # A server's start_response (PEP 3333: exc_info may replace headers not yet sent);
    # the test client's would re-raise any exc_info.
    started = []

    def start_response(status, headers, exc_info=None):
        started.append((status, dict(headers)))

    body = b"".join(own.wsgi_app(EnvironBuilder(path=path).get_environ(), start_response))
    status, headers = started[-1]
    assert status.startswith("500") and headers["Content-Type"].startswith(kind)
    assert b"<h1><p>" not in body and (b"Something went wrong" in body or b"server_error" in body)


def test_submissions_older_than_a_day_are_pruned(client_for, product_factory):
    merchandiser = client_for("merchandiser")
    red = product_factory("RED-1", on_hand=10)
    for reason in ("old", "new"):
        merchandiser.post(f"/stock/{red.id}/adjust",
                          data={"delta": "1", "reason": reason, "submit_token": token()})
    db.session.execute(update(Submission).where(Submission.message.contains("10 → 11"))
                       .values(created_at=datetime.now(timezone.utc) - timedelta(hours=25)))
    db.session.commit()
    assert prune(datetime.now(timezone.utc))["submissions"] == 1
    assert [m for m in db.session.scalars(select(Submission.message))] == [
        "RED-1: on hand 11 → 12 (+1)."]


# Dashboard POSTs that need no submit token, each with the reason.
NO_TOKEN = {
    "auth.sign_in": "changes no stock; throttled and answered by itself",
    "auth.sign_out": "ending a session twice is the same as once",
    "account.sign_out_everywhere": "ending sessions twice is the same as once",
    "admin.end_sessions": "ending sessions twice is the same as once",
    "stock.import_counts": "its check changes nothing; its apply step is @applies_once",
    "catalogue.check_import": "a dry run: changes nothing",
    "jobs.run": "a job is idempotent and commits in batches; running it twice is harmless",
}


def test_every_state_changing_dashboard_post_applies_once(app):
    missing = sorted(
        rule.endpoint for rule in app.url_map.iter_rules()
        if "POST" in rule.methods and not rule.endpoint.startswith("api.")
        and rule.endpoint not in NO_TOKEN
        and not getattr(app.view_functions[rule.endpoint], "applies_once", False)
    )
    assert missing == []
