"""Overview tiles: every figure, each linking to the list behind it, refreshing itself."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from dashboard import services
from dashboard.extensions import db
from dashboard.models import JobRun, Order
from dashboard.services import Owner
from tests.helpers.web import HX, login


@pytest.fixture
def viewer(client, staff_factory):
    user = staff_factory("viewer")
    login(client, user)
    return user


def tile(body: str, href: str) -> str:
    """The figure of the tile linking to `href`."""
    match = re.search(rf'<a class="tile[^"]*" href="{re.escape(href)}">\s*<div class="tile-figure">([\d,]+)</div>', body)
    assert match, f"no tile for {href}"
    return match.group(1)


def test_overview_full_page_and_partial(client, viewer):
    full = client.get("/").get_data(as_text=True)
    assert "<html" in full and 'id="tiles"' in full
    for url in ("/", "/overview/tiles"):
        partial = client.get(url, headers=HX).get_data(as_text=True)
        assert "<html" not in partial and partial.lstrip().startswith('<div id="tiles"')


def test_tiles_poll_every_ten_seconds(client, viewer):
    body = client.get("/overview/tiles", headers=HX).get_data(as_text=True)
    assert 'hx-get="/overview/tiles" hx-trigger="every 10s" hx-swap="outerHTML"' in body


def test_tiles_count_stock_holds_and_alerts(client, viewer, product_factory, now):
    # Tiles use the real clock; holds are made relative to it.
    real_now = datetime.now(timezone.utc)
    product_factory("OK-1", on_hand=50, threshold=5)
    product_factory("LOW-1", on_hand=3, threshold=5)
    product_factory("OUT-1", on_hand=0, threshold=5)
    off = product_factory("OFF-1", on_hand=9, threshold=5)
    services.update_product(off.id, actor=services.SYSTEM, now=now, is_active=False)
    busy = product_factory("BUSY-1", on_hand=100, threshold=1)
    services.reserve(busy.sku, 2, Owner(session_key="soon"), ttl_seconds=120, now=real_now)
    services.reserve(busy.sku, 3, Owner(session_key="later"), ttl_seconds=3600, now=real_now)
    services.reserve(busy.sku, 1, Owner(session_key="overdue"), ttl_seconds=60,
                     now=real_now - timedelta(minutes=5))  # overdue, not swept: stuck
    order = Order(status="cancelled", created_at=real_now, updated_at=real_now)
    db.session.add(order)
    db.session.commit()
    services.reserve(busy.sku, 1, Owner(order_id=order.id), ttl_seconds=3600, now=real_now)  # stuck

    body = client.get("/", headers=HX).get_data(as_text=True)
    assert tile(body, "/stock") == "4"
    assert "(+1 inactive)" in body
    assert tile(body, "/stock?filter=low") == "1"
    assert tile(body, "/stock?filter=out") == "1"
    assert tile(body, "/alerts?tab=open") == "2"
    assert tile(body, "/holds") == "4" and "(7 units)" in body
    assert tile(body, "/holds?filter=expiring") == "1"
    assert tile(body, "/holds?filter=stuck") == "2"


def test_acknowledged_alerts_are_not_counted_as_open(client, viewer, product_factory, staff_factory, now):
    product_factory("OUT-1", on_hand=0)
    product_factory("OUT-2", on_hand=0)
    from dashboard.models import StockAlert
    alert = db.session.query(StockAlert).first()
    services.acknowledge(alert.id, actor=services.Actor.staff(staff_factory("manager")), now=now)
    body = client.get("/", headers=HX).get_data(as_text=True)
    assert tile(body, "/alerts?tab=open") == "1" and "(+1 acknowledged)" in body


def test_last_run_of_each_job(client, viewer):
    now = datetime.now(timezone.utc)
    db.session.add_all([
        JobRun(job="expire", slot_at=now - timedelta(minutes=2), started_at=now - timedelta(minutes=2),
               finished_at=now, status="failed"),
        JobRun(job="expire", slot_at=now - timedelta(minutes=1), started_at=now - timedelta(minutes=1),
               finished_at=now, status="ok"),
        JobRun(job="alerts", slot_at=now, started_at=now, status="failed"),
    ])
    db.session.commit()
    body = client.get("/", headers=HX).get_data(as_text=True)
    jobs = re.findall(r'<div class="tile-label">(\w+)</div>\s*(?:<div>)?<span class="badge [\w-]+">([\w ]+)</span>', body)
    assert jobs == [("expire", "Ok"), ("alerts", "Failed"), ("reconcile", "Never run")]
    assert body.count('href="/jobs"') == 3


def test_empty_database_overview_still_renders(client, viewer):
    body = client.get("/").get_data(as_text=True)
    assert tile(body, "/stock") == "0" and "Never run" in body


def test_nav_shows_links_user_and_open_alert_count(client, staff_factory, product_factory):
    product_factory("OUT-1", on_hand=0)
    login(client, staff_factory("admin"))
    body = client.get("/").get_data(as_text=True)
    for href in ("/", "/stock", "/holds", "/alerts?tab=open", "/activity", "/jobs", "/admin/staff"):
        assert f'href="{href}"' in body
    assert re.search(r'<span id="alert-badge" class="count count-hot"[^>]*aria-label="1 open"[^>]*>1</span>', body)
    assert "Admin" in body and ">admin<" in body and "Sign out" in body


def test_staff_link_only_for_admins(client, staff_factory):
    login(client, staff_factory("manager"))
    assert 'href="/admin/staff"' not in client.get("/").get_data(as_text=True)


def test_alert_badge_partial_refreshes_on_stock_and_alert_changes(client, viewer, product_factory):
    body = client.get("/overview/alert-badge", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="stock-changed from:body, alerts-changed from:body, every 60s"' in body
    assert " hidden>0<" in body
    product_factory("OUT-1", on_hand=0)
    assert ">1</span>" in client.get("/overview/alert-badge", headers=HX).get_data(as_text=True)


def test_overview_needs_sign_in(client):
    assert client.get("/").status_code == 302
    response = client.get("/overview/tiles", headers=HX)
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/sign-in")
