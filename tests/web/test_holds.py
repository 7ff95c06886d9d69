"""Holds console: listing, stuck reasons, filters, keyset pages, release and extend."""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, Reservation, StockMovement
from dashboard.services import SYSTEM, Actor, Owner
from tests.helpers.records import make_cart, make_order
from tests.helpers.web import HX


@pytest.fixture
def clock():
    # The views read the wall clock, so holds are made relative to it.
    return datetime.now(timezone.utc)


@pytest.fixture
def support(client_for):
    return client_for("support")


def _hold(product, clock, owner=None, ttl=900, quantity=1, actor=SYSTEM, made_ago=None):
    when = clock - made_ago if made_ago else clock
    return services.reserve(product.sku, quantity, owner or Owner(session_key="sess-1"), ttl,
                            actor=actor, now=when)


def _status(hold_id):
    db.session.expire_all()
    return db.session.get(Reservation, hold_id).status


def test_holds_page_renders_full_and_as_partial(support, product_factory, clock):
    _hold(product_factory(sku="MUG-1"), clock)
    full = support.get("/holds")
    assert full.status_code == 200
    assert b"<html" in full.data and b"MUG-1" in full.data
    partial = support.get("/holds", headers=HX)
    assert partial.status_code == 200
    assert b"<html" not in partial.data and b"MUG-1" in partial.data
    assert "HX-Request" in partial.headers["Vary"]
    # A history restore wants the whole page back.
    restore = support.get("/holds", headers={**HX, "HX-History-Restore-Request": "true"})
    assert b"<html" in restore.data


def test_empty_console_says_what_to_do(support):
    page = support.get("/holds").get_data(as_text=True)
    assert "No active holds" in page
    filtered = support.get("/holds?sku=NOPE").get_data(as_text=True)
    assert "No product has the SKU" in filtered


def test_hold_shows_owner_and_api_client_name(support, product_factory, clock, now):
    client, _token = services.create_api_client("Web shop EU", now=now)
    order_id = make_order(clock, {}, storefront=client.id)
    _hold(product_factory(sku="TEE-1"), clock,
          Owner(order_id=order_id, customer_id=77, session_key="abc123"), actor=Actor.api(client))
    page = support.get("/holds").get_data(as_text=True)
    assert f"Order {order_id}" in page and "Customer 77" in page and "abc123" in page
    assert "API: Web shop EU" in page


def test_stuck_filter_lists_each_stuck_hold_with_why(support, product_factory, clock):
    product = product_factory(sku="LAMP-1", on_hand=100)
    fine = _hold(product, clock)
    overdue = _hold(product, clock, made_ago=timedelta(minutes=20), ttl=900)
    shipped_id = make_order(clock, {}, status="shipped")
    of_shipped = _hold(product, clock, Owner(order_id=shipped_id))
    other = product_factory(sku="LAMP-2")
    cart_id = make_cart(clock, {other.id: 1})  # the cart no longer has LAMP-1
    dropped = _hold(product, clock, Owner(cart_id=cart_id))
    old = _hold(product, clock, made_ago=timedelta(minutes=70), ttl=2 * 3600)

    page = support.get("/holds?filter=stuck", headers=HX).get_data(as_text=True)
    shown = set(map(int, re.findall(r'id="hold-(\d+)"', page)))
    assert shown == {overdue.id, of_shipped.id, dropped.id, old.id}
    assert fine.id not in shown
    assert "overdue: expired but not yet swept" in page
    assert f"its order {shipped_id} is shipped" in page
    assert f"cart {cart_id} no longer holds this product" in page
    assert "older than 60 min" in page


def test_cart_that_still_holds_the_product_is_not_stuck(support, product_factory, clock):
    product = product_factory(sku="CUP-1")
    cart_id = make_cart(clock, {product.id: 2})
    _hold(product, clock, Owner(cart_id=cart_id), quantity=2)
    page = support.get("/holds?filter=stuck", headers=HX).get_data(as_text=True)
    assert 'id="hold-' not in page


def test_expiring_sku_and_owner_filters(support, product_factory, clock):
    mug, tee = product_factory(sku="MUG-9"), product_factory(sku="TEE-9")
    soon = _hold(mug, clock, Owner(customer_id=41), ttl=120)
    later = _hold(mug, clock, Owner(customer_id=42), ttl=3600)
    cart_id = make_cart(clock, {tee.id: 1})
    in_cart = _hold(tee, clock, Owner(cart_id=cart_id))

    def ids(query):
        page = support.get("/holds?" + query, headers=HX).get_data(as_text=True)
        return set(map(int, re.findall(r'id="hold-(\d+)"', page)))

    assert ids("filter=expiring") == {soon.id}
    assert ids("sku=MUG-9") == {soon.id, later.id}
    assert ids("owner=customer+42") == {later.id}
    assert ids(f"owner=cart:{cart_id}") == {in_cart.id}
    assert ids("owner=42") == {later.id}
    assert ids("owner=order+abc") == set()
    assert ids("owner=%C2%B2") == set() and ids("owner=cart+%D9%A3") == set()  # '²', Arabic 3
    assert ids("filter=nonsense") == {soon.id, later.id, in_cart.id}  # unknown filter -> all


def test_pages_are_keyset_and_never_repeat_a_hold(support, product_factory, clock):
    product = product_factory(sku="BULK-1", on_hand=1000)
    made = [_hold(product, clock, ttl=600 + i) for i in range(55)]
    first = support.get("/holds", headers=HX).get_data(as_text=True)
    first_ids = re.findall(r'id="hold-(\d+)"', first)
    assert len(first_ids) == 50
    cursor = re.search(r'href="/holds\?after=([^"&]+)"', first).group(1)
    second = support.get(f"/holds?after={cursor}", headers=HX).get_data(as_text=True)
    second_ids = re.findall(r'id="hold-(\d+)"', second)
    assert len(second_ids) == 5
    assert {int(i) for i in first_ids + second_ids} == {h.id for h in made}
    # A mangled cursor starts again from the first page instead of failing.
    assert support.get("/holds?after=9999999999999999999999-x").status_code == 200


def test_release_one_hold_with_a_reason(support, product_factory, clock):
    product = product_factory(sku="PEN-1", on_hand=5)
    hold = _hold(product, clock, quantity=2)
    response = support.post(f"/holds/{hold.id}/release", data={"reason": "customer called"},
                            headers=HX)
    # As a bulk release: the row leaves the list (an empty swap) and the toast names the hold.
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    toast = json.loads(response.headers["HX-Trigger"])["toast"]
    assert toast == {"message": f"Released 1 hold: hold {hold.id} (PEN-1 × 2).", "level": "success"}
    assert _status(hold.id) == "released"
    assert db.session.get(Product, product.id).reserved == 0
    move = db.session.scalars(select(StockMovement).where(StockMovement.kind == "release")).one()
    assert move.reason == "customer called" and move.actor_staff_id == support.user.id


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_release_refuses_a_missing_or_huge_reason(support, product_factory, clock, reason):
    hold = _hold(product_factory(), clock)
    response = support.post(f"/holds/{hold.id}/release", data={"reason": reason}, headers=HX)
    assert response.status_code == 422
    assert 'class="error"' in response.get_data(as_text=True)
    assert _status(hold.id) == "active"


def test_markup_in_a_reason_is_stored_as_text_and_shown_escaped(support, product_factory, clock):
    hold = _hold(product_factory(), clock)
    reason = '<script>alert("x")</script> & \'quotes\''
    response = support.post(f"/holds/{hold.id}/release", data={"reason": reason}, headers=HX)
    assert response.status_code == 200
    assert db.session.get(Reservation, hold.id).end_reason == reason
    # The ended hold's row (shown to whoever tries to release it again) quotes it as text.
    again = support.post(f"/holds/{hold.id}/release", data={"reason": "again"}, headers=HX)
    body = again.get_data(as_text=True)
    assert again.status_code == 409 and f'id="hold-{hold.id}"' in body
    assert "<script>alert" not in body and "&lt;script&gt;" in body


def test_second_staff_releasing_the_same_hold_is_told_who_and_when(
        client_for, product_factory, clock):
    first = client_for("support", "first@example.com")
    second = client_for("manager", "second@example.com")
    product = product_factory(on_hand=5)
    hold = _hold(product, clock, quantity=3)
    assert first.post(f"/holds/{hold.id}/release", data={"reason": "dup cart"},
                      headers=HX).status_code == 200
    late = second.post(f"/holds/{hold.id}/release", data={"reason": "also me"}, headers=HX)
    assert late.status_code == 409
    body = late.get_data(as_text=True)
    assert "already released by staff at" in body
    assert "already released by staff" in late.headers["HX-Trigger"]
    releases = db.session.scalar(
        select(func.count()).select_from(StockMovement).where(StockMovement.kind == "release"))
    assert releases == 1
    assert db.session.get(Product, product.id).reserved == 0


def test_two_staff_racing_to_release_one_hold_release_it_once(
        client_for, product_factory, clock, requires_postgres):
    racers = [client_for("support", "ann@example.com"), client_for("manager", "bob@example.com")]
    product = product_factory(on_hand=5)
    hold_id = _hold(product, clock, quantity=2).id
    emails = [c.user.email for c in racers]
    db.session.rollback()
    start = threading.Barrier(2)
    answers = {}

    def release(client, email):
        start.wait()
        answers[email] = client.post(f"/holds/{hold_id}/release", data={"reason": "race"},
                                     headers=HX)

    threads = [threading.Thread(target=release, args=pair) for pair in zip(racers, emails)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 409]
    loser = next(r for r in answers.values() if r.status_code == 409)
    assert "already released by staff at" in loser.get_data(as_text=True)
    assert db.session.get(Product, product.id).reserved == 0
    assert services.check() == []


def test_release_many_releases_the_ticked_holds(support, product_factory, clock):
    product = product_factory(on_hand=10)
    a, b, kept = (_hold(product, clock) for _ in range(3))
    response = support.post("/holds/release", headers=HX,
                            data={"ids": [str(a.id), str(b.id)], "reason": "stale test carts"})
    assert response.status_code == 200
    toast = json.loads(response.headers["HX-Trigger"])["toast"]["message"]
    assert toast.startswith("Released 2 holds: ") and f"hold {a.id} (" in toast and f"hold {b.id} (" in toast
    body = response.get_data(as_text=True)
    assert f'id="hold-{a.id}"' not in body and f'id="hold-{kept.id}"' in body
    assert [_status(a.id), _status(b.id), _status(kept.id)] == ["released", "released", "active"]


def test_holds_filter_finds_skus_in_any_case_and_products_by_name(support, product_factory, clock):
    blue = product_factory(sku="STA-103-BLUE", name="Stapler blue", on_hand=5)
    red = product_factory(sku="STA-103-RED", name="Stapler red", on_hand=5)
    sock = product_factory(sku="SCK-1", name="Merino sock grey", on_hand=5)
    holds = {p.sku: _hold(p, clock).id for p in (blue, red, sock)}

    def shown(term):
        page = support.get("/holds", query_string={"sku": term}, headers=HX).get_data(as_text=True)
        return {int(i) for i in re.findall(r'id="hold-(\d+)"', page)}

    assert shown("sta-103-blue") == {holds["STA-103-BLUE"]}  # the exact SKU, any case
    assert shown("STA-103") == {holds["STA-103-BLUE"], holds["STA-103-RED"]}
    assert shown("sock merino") == {holds["SCK-1"]}  # words of the name, any order
    assert shown("grey STA") == set()


def test_release_many_lists_holds_someone_else_ended(support, product_factory, clock):
    product = product_factory(on_hand=10)
    a, b = _hold(product, clock), _hold(product, clock)
    services.release(a.id, actor=SYSTEM, reason="storefront", now=clock)
    response = support.post("/holds/release", headers=HX,
                            data={"ids": [str(a.id), str(b.id)], "reason": "cleanup"})
    body = response.get_data(as_text=True)
    assert f"hold {a.id} was already released by the system" in body
    assert _status(b.id) == "released"


@pytest.mark.parametrize("data", [
    {"ids": ["1"], "reason": ""},
    {"ids": [], "reason": "no selection"},
    {"ids": ["abc"], "reason": "text id"},
    {"ids": ["-4"], "reason": "negative id"},
    {"ids": ["9" * 40], "reason": "huge id"},
    {"ids": ["\u00b2"], "reason": "superscript digit"},
    {"ids": ["1"], "reason": "<b>" * 200},
])
def test_release_many_refuses_bad_input_and_changes_nothing(support, product_factory, clock,
                                                            data):
    product = product_factory(on_hand=5)
    hold = _hold(product, clock)
    data = {**data, "ids": [str(hold.id) if i == "1" else i for i in data["ids"]]}
    response = support.post("/holds/release", data=data, headers=HX)
    assert response.status_code == 422
    assert _status(hold.id) == "active"
    assert "<b><b>" not in response.get_data(as_text=True)


def test_release_many_without_htmx_redirects_with_a_message(support, product_factory, clock):
    hold = _hold(product_factory(), clock)
    response = support.post("/holds/release", data={"ids": [str(hold.id)], "reason": "r"})
    assert response.status_code == 302
    assert _status(hold.id) == "released"
    bad = support.post("/holds/release", data={"ids": [str(hold.id)], "reason": ""})
    assert bad.status_code == 422 and b"<html" in bad.data


def test_extend_moves_the_expiry_later(support, product_factory, clock):
    hold = _hold(product_factory(), clock, ttl=900)
    before = hold.expires_at
    response = support.post(f"/holds/{hold.id}/extend", data={"minutes": "10"}, headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Reservation, hold.id).expires_at == before + timedelta(minutes=10)


@pytest.mark.parametrize("minutes", ["-5", "0", "abc", "1e3", "99999999999999999999", "", "2000"])
def test_extend_refuses_bad_minutes_and_changes_nothing(support, product_factory, clock,
                                                        minutes):
    hold = _hold(product_factory(), clock)
    before = hold.expires_at
    response = support.post(f"/holds/{hold.id}/extend", data={"minutes": minutes}, headers=HX)
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Reservation, hold.id).expires_at == before


def test_extend_past_the_cap_is_refused_with_the_limit(support, product_factory, clock):
    hold = _hold(product_factory(), clock, ttl=900)  # cap: 120 min after it was made
    response = support.post(f"/holds/{hold.id}/extend", data={"minutes": "200"}, headers=HX)
    assert response.status_code == 422
    assert "at most until" in response.get_data(as_text=True)
    assert _status(hold.id) == "active"


def test_viewer_cannot_release_or_extend(client_for, product_factory, clock):
    viewer = client_for("viewer")
    hold = _hold(product_factory(), clock)
    assert viewer.post(f"/holds/{hold.id}/release", data={"reason": "x"}).status_code == 403
    assert viewer.post(f"/holds/{hold.id}/extend", data={"minutes": "5"}).status_code == 403
    assert viewer.post("/holds/release", data={"ids": [str(hold.id)], "reason": "x"}
                       ).status_code == 403
    assert _status(hold.id) == "active"
    assert b"Release selected" not in viewer.get("/holds").data


def test_unknown_hold_is_a_404(support):
    assert support.post("/holds/999999/release", data={"reason": "x"}).status_code == 404


def test_plain_form_row_actions_answer_with_full_pages(support, product_factory, clock):
    hold = _hold(product_factory(), clock)
    bad = support.post(f"/holds/{hold.id}/release", data={"reason": ""})
    assert bad.status_code == 422 and b"<html" in bad.data and b"A reason is required" in bad.data
    done = support.post(f"/holds/{hold.id}/release", data={"reason": "gone"})
    assert done.status_code == 302
    again = support.post(f"/holds/{hold.id}/release", data={"reason": "gone"})
    assert again.status_code == 409 and b"<html" in again.data
    assert "already released by staff" in again.get_data(as_text=True)


def test_a_hold_at_its_cap_says_so_instead_of_offering_extend(support, product_factory, clock):
    capped = _hold(product_factory(sku="CAP-1"), clock, ttl=7200)  # the cap: 120 min after made
    free = _hold(product_factory(sku="FREE-1"), clock, ttl=900)
    forms = {h.id: support.get(f"/holds/{h.id}/actions", headers=HX).get_data(as_text=True)
             for h in (capped, free)}
    assert "At its cap" in forms[capped.id] and f"/holds/{capped.id}/extend" not in forms[capped.id]
    assert "At its cap" not in forms[free.id] and f"/holds/{free.id}/extend" in forms[free.id]


def test_the_list_fetches_a_rows_forms_when_it_is_opened(support, product_factory, clock):
    # 50 rows of forms with their submit tokens were most of the page's time (issue 12).
    hold = _hold(product_factory(sku="MUG-1"), clock)
    page = support.get("/holds", headers=HX).get_data(as_text=True)
    assert f'hx-get="/holds/{hold.id}/actions"' in page and 'hx-trigger="toggle once"' in page
    assert f"/holds/{hold.id}/release" not in page and 'name="submit_token"' in page  # bulk only
    assert page.count('name="submit_token"') == 1
    forms = support.get(f"/holds/{hold.id}/actions", headers=HX)
    body = forms.get_data(as_text=True)
    assert forms.status_code == 200 and "<html" not in body
    assert f'hx-post="/holds/{hold.id}/release"' in body and body.count('name="submit_token"') == 2
    # Without htmx the link opens the hold's own page with the forms open.
    alone = support.get(f"/holds/{hold.id}/actions").get_data(as_text=True)
    assert "<html" in alone and "<details class=\"row-forms\" open" in alone
    assert f'action="/holds/{hold.id}/release"' in alone
    # Opened after someone else released it: it says so, with nothing to submit.
    services.release(hold.id, actor=SYSTEM, reason="gone", now=clock)
    ended = support.get(f"/holds/{hold.id}/actions", headers=HX).get_data(as_text=True)
    assert "has ended (released" in ended and "<form" not in ended
    assert support.get("/holds/999999/actions", headers=HX).status_code == 404


# --- per location -----------------------------------------------------------------------------

def test_holds_show_their_location_and_filter_by_it(support, product_factory, clock):
    from dashboard.services.locations import create_location
    create_location("STORE-1", "High Street store", kind="store", priority=200, actor=SYSTEM, now=clock)
    mug = product_factory(sku="MUG-1", on_hand=5)
    services.adjust(mug.id, 5, reason="delivery", location="STORE-1", actor=SYSTEM, now=clock)
    at_main = _hold(mug, clock)
    at_store = services.reserve(mug.sku, 2, Owner(session_key="s2"), 900, location="STORE-1", now=clock)

    def ids(query):
        page = support.get("/holds?" + query, headers=HX).get_data(as_text=True)
        return set(map(int, re.findall(r'id="hold-(\d+)"', page)))

    page = support.get("/holds").get_data(as_text=True)
    row = re.search(rf'<tr id="hold-{at_store.id}".*?</tr>', page, re.S).group(0)
    assert '<abbr title="High Street store">STORE-1</abbr>' in row
    assert '<option value="STORE-1">' in page  # the location filter
    assert ids("") == {at_main.id, at_store.id}
    assert ids("location=store-1") == {at_store.id}
    assert ids("location=MAIN&sku=MUG-1") == {at_main.id}
    unknown = support.get("/holds?location=NOWHERE", headers=HX).get_data(as_text=True)
    assert "There is no location “NOWHERE”" in unknown
