"""The Transfers pages: the list, a new transfer, one transfer's steps, who may take them,
and bad or stale input answered with a sentence and nothing changed."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import StockLevel, StockMovement, Transfer, TransferLine
from dashboard.services import SYSTEM
from dashboard.services.locations import create_location, find_location
from tests.helpers.web import HX


@pytest.fixture
def shop(now, product_factory):
    """MAIN and STORE-1, with PEN (20) and MUG (8) at MAIN."""
    create_location("STORE-1", "High Street store", kind="store", actor=SYSTEM, now=now)
    return {"pen": product_factory("PEN", on_hand=20), "mug": product_factory("MUG", on_hand=8)}


def token() -> str:
    return secrets.token_urlsafe(24)


def new_form(lines, source="MAIN", destination="STORE-1", **extra) -> dict:
    form = {"source": source, "destination": destination, "note": "", **extra}
    for i, (sku, quantity) in enumerate(lines):
        form[f"lines-{i}-sku"], form[f"lines-{i}-quantity"] = sku, quantity
    return form


def draft(now, lines=(("PEN", 5),)) -> int:
    return services.create_transfer("MAIN", "STORE-1", list(lines), actor=SYSTEM, now=now).id


def level(product, code: str) -> tuple[int, int]:
    found = db.session.scalars(select(StockLevel).where(
        StockLevel.product_id == product.id,
        StockLevel.location_id == find_location(code).id)
        .execution_options(populate_existing=True)).one()
    return found.on_hand, found.reserved


def state() -> tuple:
    """Everything a refused step must leave as it was."""
    db.session.expire_all()
    found = (
        tuple(db.session.execute(select(Transfer.id, Transfer.status).order_by(Transfer.id))),
        tuple(db.session.execute(select(TransferLine.id, TransferLine.received,
                                        TransferLine.written_off).order_by(TransferLine.id))),
        tuple(db.session.execute(select(StockLevel.product_id, StockLevel.location_id,
                                        StockLevel.on_hand, StockLevel.reserved)
                                 .order_by(StockLevel.product_id, StockLevel.location_id))),
        db.session.scalar(select(func.count()).select_from(StockMovement)),
    )
    db.session.commit()
    return found


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_a_merchandiser_creates_ships_receives_part_and_writes_off_the_rest(
        client, merchandiser, shop, now):
    form = client.get("/transfers/new?sku=MUG&source=MAIN")
    assert form.status_code == 200
    assert 'value="MUG"' in text_of(form) and '<option selected value="MAIN">' in text_of(form)

    created = client.post("/transfers/new", data=new_form(
        [("PEN", "12"), ("", ""), ("MUG", "3")], note="window display"))
    assert created.status_code == 302 and created.headers["Location"] == "/transfers/1"
    page = text_of(client.get("/transfers/1"))
    assert "T-00001" in page and "Draft" in page and "window display" in page
    assert "Available at MAIN" in page

    assert client.post("/transfers/1/ship").status_code == 302
    assert level(shop["pen"], "MAIN") == (8, 0)
    page = text_of(client.get("/transfers/1"))
    assert "In transit" in page and f'name="received-{shop["pen"].id}"' in page
    assert f'value="12"' in page  # receive defaults to everything in transit

    received = client.post("/transfers/1/receive", data={
        f"received-{shop['pen'].id}": "10", f"received-{shop['mug'].id}": "3"})
    assert received.status_code == 302
    with client.session_transaction() as session:
        said = [m for _, m in session.pop("_flashes", [])]
    assert said == ["T-00001: 13 units received at STORE-1. 2 units still in transit."]
    assert level(shop["pen"], "STORE-1") == (10, 0)

    assert client.post("/transfers/1/write-off", data={"reason": "crushed box"}).status_code == 302
    page = text_of(client.get("/transfers/1"))
    assert "Received</span>" in page and "2 units written off (crushed box)" in page
    assert services.check() == []

    listed = text_of(client.get("/transfers?status=received"))
    assert "T-00001" in listed and "window display" in listed
    assert "T-00001" not in text_of(client.get("/transfers?status=draft"))


def test_cancel_closes_a_draft(client, merchandiser, shop, now):
    tid = draft(now)
    assert client.post(f"/transfers/{tid}/cancel").status_code == 302
    assert "Cancelled" in text_of(client.get(f"/transfers/{tid}"))
    refused = client.post(f"/transfers/{tid}/ship")
    assert refused.status_code == 409 and "was cancelled" in text_of(refused)


@pytest.mark.parametrize("lines, extra, words", [
    ([("NOPE-1", "2")], {}, "line 1: no product with SKU &#39;NOPE-1&#39;"),
    ([("PEN", "0")], {}, "line 1: quantity must be at least 1"),
    ([("PEN", "-4")], {}, "line 1: quantity must be at least 1"),
    ([("PEN", "1"), ("MUG", "99999999999")], {}, "line 2: quantity must be at most 1,000,000"),
    ([("PEN", "two")], {}, "line 1: quantity must be a whole number"),
    ([("PEN", "")], {}, "line 1: quantity must be a whole number"),
    ([("", "3")], {}, "line 1: enter the SKU"),
    ([("", "")], {}, "enter at least one SKU and quantity"),
    ([("PEN", "1")], {"destination": "MAIN"}, "To: choose a different location"),
    ([("PEN", "1")], {"source": "ELSEWHERE"}, "From: Not a valid choice"),
    ([("PEN", "1")], {"note": "x" * 501}, "Note: is 501 characters long"),
])
def test_bad_input_on_a_new_transfer_is_refused_with_the_form_kept(
        client, merchandiser, shop, lines, extra, words):
    before = state()
    response = client.post("/transfers/new", data=new_form(lines, **extra))
    assert response.status_code == 422
    assert words in text_of(response), text_of(response)[:3000]
    assert state() == before


def test_more_rows_keeps_what_was_typed_and_saves_nothing(client, merchandiser, shop):
    response = client.post("/transfers/new", data=new_form([("PEN", "4")], more="1"))
    assert response.status_code == 200 and 'name="lines-19-sku"' in text_of(response)
    assert 'value="PEN"' in text_of(response) and state()[0] == ()


def test_shipping_more_than_is_available_names_the_shortfall(client, merchandiser, shop, now):
    services.reserve("PEN", 18, services.Owner(session_key="s"), now=now)
    tid = draft(now)
    before = state()
    refused = client.post(f"/transfers/{tid}/ship")
    assert refused.status_code == 409
    assert "PEN needs 5, 2 available at MAIN" in text_of(refused)
    assert "Short" in text_of(refused) and state() == before


@pytest.mark.parametrize("typed, words", [
    ("abc", "units received must be a whole number"), ("-1", "at least 0"),
    ("9" * 30, "at most 1,000,000"), ("6", "PEN has 5 in transit, not 6"),
    ("0", "enter at least one unit to receive"),
])
def test_bad_receipts_are_refused_and_change_nothing(client, merchandiser, shop, now,
                                                     typed, words):
    tid = draft(now)
    services.transfers.ship(tid, actor=SYSTEM, now=now)
    before = state()
    refused = client.post(f"/transfers/{tid}/receive",
                          data={f"received-{shop['pen'].id}": typed})
    assert refused.status_code in (409, 422)
    assert words in text_of(refused) and state() == before


def test_a_stale_page_is_told_what_happened_since(client, merchandiser, shop, now):
    """Two staff on the same page: the second submit finds the first's work done."""
    tid = draft(now)
    services.transfers.ship(tid, actor=SYSTEM, now=now)
    services.transfers.receive(tid, {"PEN": 5}, actor=SYSTEM, now=now)  # another tab
    before = state()
    again = client.post(f"/transfers/{tid}/receive", data={f"received-{shop['pen'].id}": "5"})
    assert again.status_code == 409 and "already received" in text_of(again)
    shipped = client.post(f"/transfers/{tid}/ship")
    assert shipped.status_code == 409 and "already received" in text_of(shipped)
    written = client.post(f"/transfers/{tid}/write-off", data={"reason": "lost"})
    assert written.status_code == 409 and state() == before


def test_write_off_needs_a_reason(client, merchandiser, shop, now):
    tid = draft(now)
    services.transfers.ship(tid, actor=SYSTEM, now=now)
    before = state()
    refused = client.post(f"/transfers/{tid}/write-off", data={"reason": "  "})
    assert refused.status_code == 422 and "A reason is required" in text_of(refused)
    assert state() == before


def test_a_double_submitted_ship_applies_once(client, merchandiser, shop, now):
    tid = draft(now)
    submit = {"submit_token": token()}
    first = client.post(f"/transfers/{tid}/ship", data=submit)
    assert first.status_code == 302
    applied = state()
    again = client.post(f"/transfers/{tid}/ship", data=submit)
    assert again.status_code == 302 and state() == applied
    with client.session_transaction() as session:
        said = [m for _, m in session.pop("_flashes", [])]
    assert said[-1].startswith("Already applied: T-00001 shipped: 5 units left MAIN")
    twice = client.post(f"/transfers/{tid}/ship", data=submit, headers=HX)
    assert twice.status_code == 200 and twice.headers["HX-Reswap"] == "none"
    assert state() == applied
    assert db.session.scalar(select(func.count()).select_from(StockMovement)
                             .where(StockMovement.kind == "transfer_out")) == 1


def test_a_double_submitted_new_transfer_creates_one(client, merchandiser, shop):
    submit = {**new_form([("PEN", "2")]), "submit_token": token()}
    assert client.post("/transfers/new", data=submit).status_code == 302
    assert client.post("/transfers/new", data=submit).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 1


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_viewers_and_support_see_transfers_but_cannot_act(client_for, shop, now, role):
    tid = draft(now)
    looker = client_for(role)
    assert looker.get("/transfers").status_code == 200
    page = text_of(looker.get(f"/transfers/{tid}"))
    assert "T-00001" in page and "Ship from" not in page
    assert "New transfer" not in text_of(looker.get("/transfers"))
    before = state()
    for path in ("/transfers/new", f"/transfers/{tid}/ship", f"/transfers/{tid}/cancel"):
        response = looker.post(path, data=new_form([("PEN", "1")]))
        assert response.status_code == 403
        assert "move stock between locations" in text_of(response)
    assert looker.get("/transfers/new").status_code == 403
    assert state() == before


def test_the_list_pages_newest_first(client, merchandiser, shop, now):
    for _ in range(52):
        draft(now, [("MUG", 1)])
    first = text_of(client.get("/transfers"))
    assert "T-00052" in first and "T-00003" in first and "T-00002" not in first
    assert 'after=3"' in first
    older = text_of(client.get("/transfers?after=3", headers=HX))
    assert "T-00002" in older and "T-00001" in older and "<html" not in older
    assert client.get("/transfers?status=nonsense&after=zz").status_code == 200


def test_an_unknown_transfer_is_a_404(client, merchandiser, shop):
    assert client.get("/transfers/999").status_code == 404
    assert client.post("/transfers/999/ship").status_code == 404


def test_one_location_shop_is_told_it_needs_two(client, merchandiser, product_factory):
    product_factory("PEN", on_hand=1)
    assert "needs two open locations" in text_of(client.get("/transfers/new"))


def test_nav_links_to_transfers(client, merchandiser):
    assert 'href="/transfers"' in text_of(client.get("/stock"))
