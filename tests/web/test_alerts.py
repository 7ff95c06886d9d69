"""Alerts page: tabs, kind filter, acknowledge, resolve with a required note."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, StockAlert
from tests.helpers.web import HX


def _alert(product) -> StockAlert:
    return db.session.scalars(select(StockAlert).where(StockAlert.product_id == product.id)).one()


def reload_alert(alert_id) -> StockAlert:
    """The alert read again from the database (the session's copy expired first)."""
    db.session.expire_all()
    return db.session.get(StockAlert, alert_id)


def _shown(body: str) -> set[int]:
    return set(map(int, re.findall(r'id="alert-(\d+)"', body)))


def test_alerts_page_full_and_partial(manager, product_factory):
    product_factory(sku="LOW-1", on_hand=1, threshold=3)
    full = manager.get("/alerts")
    assert full.status_code == 200 and b"<html" in full.data and b"LOW-1" in full.data
    part = manager.get("/alerts?tab=open", headers=HX)
    assert b"<html" not in part.data and b"LOW-1" in part.data and b"Low stock" in part.data
    assert "HX-Request" in part.headers["Vary"]


def test_empty_tabs_say_what_they_are_for(manager):
    assert "No open alerts" in manager.get("/alerts").get_data(as_text=True)
    assert "No acknowledged alerts" in manager.get("/alerts?tab=acknowledged").get_data(as_text=True)


def test_tabs_and_kind_filter(manager, product_factory, now):
    low = _alert(product_factory(sku="LOW-2", on_hand=1, threshold=3))
    out = _alert(product_factory(sku="OUT-2", on_hand=0, threshold=3))
    acked = _alert(product_factory(sku="ACK-2", on_hand=2, threshold=3))
    services.acknowledge(acked.id, actor=services.Actor.staff(manager.user), now=now)

    def shown(query):
        return _shown(manager.get("/alerts?" + query, headers=HX).get_data(as_text=True))

    assert shown("tab=open") == {low.id, out.id}
    assert shown("tab=open&kind=OUT_OF_STOCK") == {out.id}
    assert shown("tab=open&kind=LOW_STOCK") == {low.id}
    assert shown("tab=acknowledged") == {acked.id}
    assert shown("tab=resolved") == set()
    assert shown("tab=<script>&kind=bogus") == {low.id, out.id}  # unknown values: defaults


def test_acknowledge_marks_the_alert_and_refreshes_the_badge(manager, product_factory):
    alert = _alert(product_factory(on_hand=1, threshold=3))
    response = manager.post(f"/alerts/{alert.id}/acknowledge", headers=HX)
    assert response.status_code == 200
    assert "Acknowledged" in response.get_data(as_text=True)
    assert "alerts-changed" in response.headers["HX-Trigger"]
    fresh = reload_alert(alert.id)
    assert fresh.status == "acknowledged" and fresh.acknowledged_by_id == manager.user.id


def test_resolve_with_a_note(manager, product_factory):
    product = product_factory(on_hand=1, threshold=3)
    alert = _alert(product)
    note = 'Supplier <b>delayed</b> & "reorder" placed'
    response = manager.post(f"/alerts/{alert.id}/resolve", data={"note": note}, headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Resolved" in body and "<b>delayed</b>" not in body and "&lt;b&gt;delayed" in body
    fresh = reload_alert(alert.id)
    assert (fresh.status, fresh.resolution_note, fresh.resolved_by_id) == (
        "resolved", note, manager.user.id)
    assert db.session.get(Product, product.id).alert_muted


@pytest.mark.parametrize("note", ["", "   ", "n" * 501])
def test_resolve_refuses_a_missing_or_bad_note(manager, product_factory, note):
    alert = _alert(product_factory(on_hand=1, threshold=3))
    response = manager.post(f"/alerts/{alert.id}/resolve", data={"note": note}, headers=HX)
    assert response.status_code == 422
    assert 'class="error"' in response.get_data(as_text=True)
    assert reload_alert(alert.id).status == "open"


def test_resolving_an_already_resolved_alert_says_who(client_for, product_factory):
    first, second = client_for("manager", "m1@example.com"), client_for("admin", "a1@example.com")
    alert = _alert(product_factory(on_hand=1, threshold=3))
    assert first.post(f"/alerts/{alert.id}/resolve", data={"note": "done"},
                      headers=HX).status_code == 200
    late = second.post(f"/alerts/{alert.id}/resolve", data={"note": "me too"}, headers=HX)
    assert late.status_code == 409
    assert "already resolved by Manager" in late.get_data(as_text=True)
    assert reload_alert(alert.id).resolution_note == "done"


def test_plain_form_posts_redirect_back_to_the_tab(manager, product_factory):
    alert = _alert(product_factory(on_hand=1, threshold=3))
    response = manager.post(f"/alerts/{alert.id}/acknowledge", data={"tab": "open"})
    assert response.status_code == 302 and "/alerts?tab=open" in response.headers["Location"]
    bad = manager.post(f"/alerts/{alert.id}/resolve", data={"note": ""})
    assert bad.status_code == 422 and b"<html" in bad.data


@pytest.mark.parametrize("role", ["viewer", "merchandiser", "support"])
def test_only_managers_and_admins_work_alerts(client_for, product_factory, role):
    client = client_for(role)
    alert = _alert(product_factory(on_hand=1, threshold=3))
    assert client.post(f"/alerts/{alert.id}/acknowledge").status_code == 403
    assert client.post(f"/alerts/{alert.id}/resolve", data={"note": "x"}).status_code == 403
    assert reload_alert(alert.id).status == "open"
    page = client.get("/alerts").get_data(as_text=True)
    assert "Acknowledge</button>" not in page and "Resolve…" not in page


def test_unknown_alert_is_a_404(manager):
    assert manager.post("/alerts/424242/acknowledge").status_code == 404
    assert manager.post("/alerts/424242/resolve", data={"note": "x"}).status_code == 404


def test_acknowledge_and_resolve_update_the_tab_counts_and_badge_in_the_same_answer(manager, product_factory):
    alert = _alert(product_factory(sku="LOW-9", on_hand=1, threshold=3))
    _alert(product_factory(sku="LOW-8", on_hand=1, threshold=3))
    page = manager.get("/alerts").get_data(as_text=True)
    assert 'id="alert-count-open">2<' in page

    body = manager.post(f"/alerts/{alert.id}/acknowledge", data={"tab": "open"}, headers=HX).get_data(as_text=True)
    assert '<span class="count" id="alert-count-open" hx-swap-oob="true">1</span>' in body
    assert '<span class="count" id="alert-count-acknowledged" hx-swap-oob="true">1</span>' in body
    assert re.search(r'<span id="alert-badge"[^>]*hx-swap-oob="true"[^>]*>1</span>', body)

    resolved = manager.post(f"/alerts/{alert.id}/resolve", data={"note": "reordered"}, headers=HX)
    body = resolved.get_data(as_text=True)
    assert 'id="alert-count-acknowledged" hx-swap-oob="true">0<' in body
    toast = resolved.headers["HX-Trigger"]
    assert "LOW-9 is still low: its alerts are muted until it recovers above its threshold." in toast


def test_resolving_a_still_low_alert_explains_what_it_means(manager, product_factory):
    product_factory(sku="LOW-7", on_hand=1, threshold=3)
    body = manager.get("/alerts").get_data(as_text=True)
    assert "LOW-7 is still low: resolving mutes its alerts until it recovers above its threshold of 3" in body


def test_viewers_get_no_empty_actions_column(client_for, product_factory):
    product_factory(sku="LOW-6", on_hand=1, threshold=3)
    body = client_for("viewer").get("/alerts").get_data(as_text=True)
    assert "LOW-6" in body and ">Actions<" not in body and 'class="actions"' not in body


def test_escalation_to_out_keeps_who_acknowledged_in_the_history(manager, product_factory, now):
    product = product_factory(sku="LOW-5", on_hand=2, threshold=3)
    alert = _alert(product)
    services.acknowledge(alert.id, actor=services.Actor.staff(manager.user), now=now)
    services.adjust(product.id, -2, reason="sold out", actor=services.SYSTEM, now=now)
    assert reload_alert(alert.id).kind == "OUT_OF_STOCK" and reload_alert(alert.id).status == "open"
    row = manager.get("/alerts").get_data(as_text=True)
    assert f"acknowledged by {manager.user.name}" in row and "now out of stock" in row
    history = manager.get("/products/LOW-5").get_data(as_text=True)
    assert f"acknowledged by {manager.user.name}" in history


def test_alerts_list_out_of_stock_first_then_low_and_pages_in_that_order(manager, product_factory, now):
    from dashboard.queries.alerts import alerts_page

    lows = [_alert(product_factory(sku=f"LOW-{n}", on_hand=1, threshold=3)) for n in range(3)]
    outs = [_alert(product_factory(sku=f"OUT-{n}", on_hand=0, threshold=3)) for n in range(2)]
    body = manager.get("/alerts").get_data(as_text=True)
    order = [int(i) for i in re.findall(r'<tr id="alert-(\d+)"', body)]
    assert set(order[:2]) == {a.id for a in outs} and set(order[2:]) == {a.id for a in lows}
    # Keyset pages of two keep the order and never repeat or skip an alert.
    seen, after = [], None
    while True:
        page = alerts_page("open", None, after, page_size=2, sort="severity")
        seen += [a.id for a in page.alerts]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == order
    newest = manager.get("/alerts?sort=oldest").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<tr id="alert-(\d+)"', newest)] == sorted(order)


def test_alerts_search_by_words_of_sku_or_name_in_any_case(manager, product_factory):
    sock = _alert(product_factory(sku="STA-103-BLUE", name="Merino sock blue", on_hand=1, threshold=3))
    _alert(product_factory(sku="HAT-1", name="Beanie oat", on_hand=1, threshold=3))
    assert _shown(manager.get("/alerts?q=sock+merino", headers=HX).get_data(as_text=True)) == {sock.id}
    assert _shown(manager.get("/alerts?q=sta-103", headers=HX).get_data(as_text=True)) == {sock.id}
    body = manager.get("/alerts?q=%25_", headers=HX).get_data(as_text=True)
    assert _shown(body) == set() and "No open alerts for products matching" in body
    assert 'id="alerts-search"' in body and 'value="%_"' in body
