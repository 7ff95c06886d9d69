"""axe-core over every page for every role, at a desktop (1440x900) and a tablet (820x1180)
width: no violations of any rule axe runs by default (WCAG 2 A/AA and best practices).

axe-core is vendored (tests/browser/vendor/axe-core-<version>.min.js, from `npm pack`), so
the sweep runs offline and every run checks the same rules.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard import services
from dashboard.extensions import db
from dashboard.services import Owner
from dashboard.services.jobs import run_job
from dashboard.services.locations import create_location
from tests.helpers.web import PASSWORD

pytestmark = pytest.mark.browser

AXE = next((Path(__file__).parent / "vendor").glob("axe-core-*.min.js")).read_text()
VIEWPORTS = [{"width": 1440, "height": 900}, {"width": 820, "height": 1180}]
ROLES = ("viewer", "merchandiser", "support", "manager", "admin")
PAGES = [
    "/", "/stock", "/stock?filter=low", "/products/RED-1", "/products/RED-1?range=24h",
    "/products/RED-1/edit", "/products/RED-1/deactivate", "/products/new", "/stock/import",
    "/stock/products-import", "/holds", "/holds?filter=stuck", "/alerts?tab=open",
    "/alerts?tab=acknowledged", "/alerts?tab=resolved", "/activity", "/jobs",
    "/jobs/reconcile/drift", "/admin/staff", "/admin/api-clients", "/account",
    "/transfers", "/transfers/new?sku=RED-1", "/transfers/1", "/transfers/2",
]


def _shop(staff_factory, product_factory):
    """A little of everything each page shows: history, holds, alerts, a job run, a client."""
    now = datetime.now(timezone.utc)
    merch = services.Actor.staff(staff_factory("merchandiser", email="shop-merch@example.com"))
    red = product_factory("RED-1", name="Red mug", on_hand=40, threshold=5)
    for hours, delta in ((30, 5), (3, -4), (1, 2)):
        services.adjust(red.id, delta, reason="x" * 500 if delta < 0 else "delivery",
                        actor=merch, now=now - timedelta(hours=hours))
    for n in range(3):
        services.reserve(red.sku, 2, Owner(session_key=f"cart-{n}"), now=now)
    product_factory("LOW-1", name="Low sock", on_hand=2, threshold=5)
    product_factory("OUT-1", name="Out hat", on_hand=0, threshold=5)
    services.create_api_client("Web shop", now=now)
    # Transfers: a draft (1) and one in transit, partly received (2).
    create_location("STORE-1", "High Street store", kind="store", actor=merch, now=now)
    services.create_transfer("MAIN", "STORE-1", [("RED-1", 50), ("LOW-1", 1)], "window",
                             actor=merch, now=now)
    shipped = services.create_transfer("MAIN", "STORE-1", [("RED-1", 3), ("LOW-1", 1)],
                                       actor=merch, now=now).id
    services.transfers.ship(shipped, actor=merch, now=now)
    services.transfers.receive(shipped, {"RED-1": 1}, actor=merch, now=now)
    services.evaluate_alerts(now=now)
    run_job("reconcile", now=now)
    db.session.commit()


def _violations(page) -> list[str]:
    # Panels that load after the page (the drift report) are dimmed while they load: scan
    # the page as it settles, not mid-request.
    page.wait_for_load_state("networkidle")
    page.evaluate(AXE)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => v.id + " (" + v.impact + "): " +
            v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
    }""")
    return found


def test_every_page_for_every_role_has_no_axe_violations(
        live_server, chromium, staff_factory, product_factory):
    _shop(staff_factory, product_factory)
    emails = {role: staff_factory(role, email=f"axe-{role}@example.com").email for role in ROLES}
    db.session.rollback()  # SQLite: let the live server take the write lock

    problems, scanned = [], 0
    for viewport in VIEWPORTS:
        context = chromium.new_context(viewport=viewport, bypass_csp=True)  # to inject axe
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(live_server + "/sign-in")
        problems += [f"{viewport['width']} /sign-in: {v}" for v in _violations(page)]
        scanned += 1
        for role in ROLES:
            page.context.clear_cookies()
            page.goto(live_server + "/sign-in")
            page.fill("input[name=email]", emails[role])
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(live_server + "/")
            for path in PAGES:
                response = page.goto(live_server + path)
                if response.status == 403 and role != "viewer":
                    continue  # the refusal page is the same for every role: scanned for viewers
                assert response.status in (200, 403), (role, path, response.status)
                problems += [f"{viewport['width']} {role} {path}: {v}" for v in _violations(page)]
                scanned += 1
        context.close()
    print(f"axe-core scans: {scanned}")
    assert problems == [], "\n".join(problems)
