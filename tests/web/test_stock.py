"""The stock list (search by words, filters with counts, sort, keyset pages), adjust and count
in the row's panel, CSV import."""
from __future__ import annotations

import io
import json
import re
from html import unescape

import pytest
from sqlalchemy import func, select, update

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, StockMovement
from dashboard.services import Owner
from dashboard.queries.stock import PAGE_SIZE
from tests.helpers.web import HX, login


def movements() -> int:
    return db.session.scalar(select(func.count()).select_from(StockMovement))


def fresh(product_id: int) -> Product:
    db.session.expire_all()
    return db.session.get(Product, product_id)


def skus(body: str) -> list[str]:
    return re.findall(r'<tr id="product-\d+"[^>]*>\s*<td class="nowrap"><a href="[^"]+">([^<]+)</a>', body)


# --- the list -----------------------------------------------------------------------------

def test_stock_page_full_and_partial(client, merchandiser, product_factory):
    product_factory("RED-1", name="Red mug")
    full = client.get("/stock")
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert "HX-Request" in full.headers["Vary"]
    partial = client.get("/stock", headers=HX).get_data(as_text=True)
    assert "<html" not in partial and 'id="results"' in partial and "RED-1" in partial


def test_history_restore_gets_the_full_page(client, merchandiser):
    response = client.get("/stock", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_search_matches_sku_or_name_case_insensitively(client, merchandiser, product_factory):
    product_factory("RED-1", name="Red mug")
    product_factory("BLU-2", name="Blue plate")
    product_factory("GRN-3", name="Green REDWOOD bowl")
    assert sorted(skus(client.get("/stock?q=red", headers=HX).get_data(as_text=True))) == ["GRN-3", "RED-1"]
    assert skus(client.get("/stock?q=blu-", headers=HX).get_data(as_text=True)) == ["BLU-2"]


def test_search_treats_wildcards_as_text(client, merchandiser, product_factory):
    product_factory("A%B", name="percent")
    product_factory("AXB", name="plain")
    assert skus(client.get("/stock?q=a%25b", headers=HX).get_data(as_text=True)) == ["A%B"]
    assert skus(client.get("/stock?q=_", headers=HX).get_data(as_text=True)) == []


def test_search_shorter_than_three_characters_matches_a_whole_sku_only(
        client, merchandiser, product_factory):
    product_factory("A1", name="Short SKU")
    product_factory("A10", name="Another a1 thing")
    body = client.get("/stock?q=a1", headers=HX).get_data(as_text=True)
    assert skus(body) == ["A1"] and "Type at least 3 letters or digits" in body
    body = client.get("/stock?q=zz", headers=HX).get_data(as_text=True)
    assert skus(body) == [] and "No product has the SKU “zz”" in body


def test_empty_search_says_what_to_do(client, merchandiser, product_factory):
    product_factory("RED-1")
    body = client.get("/stock?q=zzz", headers=HX).get_data(as_text=True)
    assert "No product’s SKU, name, barcode or category contains “zzz”" in body
    assert "clear the search" in body


def test_filters_low_out_inactive(client, merchandiser, product_factory, now):
    product_factory("OK-1", on_hand=50, threshold=5)
    product_factory("LOW-1", on_hand=3, threshold=5)
    product_factory("OUT-1", on_hand=0, threshold=5)
    held = product_factory("HELD-1", on_hand=2, threshold=5)
    services.reserve(held.sku, 2, Owner(session_key="s1"), now=now)  # available 0: out
    gone = product_factory("OFF-1", on_hand=0, threshold=5)
    services.update_product(gone.id, actor=services.SYSTEM, now=now, is_active=False)

    def listed(filter_):
        return sorted(skus(client.get(f"/stock?filter={filter_}", headers=HX).get_data(as_text=True)))

    assert listed("low") == ["LOW-1"]
    assert listed("out") == ["HELD-1", "OUT-1"]
    assert listed("inactive") == ["OFF-1"]
    assert listed("all") == ["HELD-1", "LOW-1", "OFF-1", "OK-1", "OUT-1"]


def test_row_shows_figures_and_badges_in_words(client, merchandiser, product_factory, now):
    product = product_factory("LOW-1", on_hand=5, threshold=4)
    services.reserve(product.sku, 2, Owner(session_key="s1"), now=now)
    body = client.get("/stock", headers=HX).get_data(as_text=True)
    row = re.search(r'<tr id="product-\d+".*?</tr>', body, re.S).group(0)
    assert re.findall(r'<td class="num[^"]*"[^>]*>([\d,]+)</td>', row) == ["5", "2", "3", "4"]
    assert "badge-low" in row and ">Low<" in row and "Alert open" in row


def _all_pages(client, url: str) -> list[str]:
    seen, next_url = [], url
    while next_url:
        body = client.get(next_url, headers=HX).get_data(as_text=True)
        page = skus(body)
        assert len(page) <= PAGE_SIZE
        seen += page
        match = re.search(r'<a href="([^"]+)"[^>]*rel="next"', body)
        next_url = match.group(1).replace("&amp;", "&") if match else None
    return seen


@pytest.mark.parametrize("sort", ["sku", "name", "on_hand", "reserved", "available", "threshold"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_keyset_pages_cover_every_product_once_in_order(client, merchandiser, product_factory, now,
                                                        sort, direction):
    # Many equal values, so the id tie-break decides the order across page boundaries.
    for n in range(PAGE_SIZE * 2 + 7):
        product = product_factory(f"P-{n:04d}", name=f"Item {n % 5}", on_hand=n % 4 + 1, threshold=n % 3)
        if n % 2:
            services.reserve(product.sku, 1, Owner(session_key=f"s{n}"), now=now)
    listed = _all_pages(client, f"/stock?sort={sort}&dir={direction}")
    products = db.session.scalars(select(Product)).all()
    key = {
        "sku": lambda p: (p.sku, p.id), "name": lambda p: (p.name, p.id),
        "on_hand": lambda p: (p.on_hand, p.id), "reserved": lambda p: (p.reserved, p.id),
        "available": lambda p: (p.available, p.id), "threshold": lambda p: (p.low_stock_threshold, p.id),
    }[sort]
    expected = [p.sku for p in sorted(products, key=key, reverse=direction == "desc")]
    assert listed == expected


@pytest.mark.parametrize("sort, direction", [("sku", "asc"), ("available", "desc"), ("name", "desc")])
def test_previous_pages_mirror_the_next_pages(client, merchandiser, product_factory, sort, direction):
    for n in range(PAGE_SIZE * 2 + 7):
        product_factory(f"P-{n:04d}", name=f"Item {n % 3}", on_hand=n % 5 + 1)
    forward, url = [], f"/stock?sort={sort}&dir={direction}"
    while url:
        body = client.get(url, headers=HX).get_data(as_text=True)
        forward.append(skus(body))
        match = re.search(r'<a href="([^"]+)"[^>]*rel="next"', body)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert 'rel="prev"' not in client.get(f"/stock?sort={sort}&dir={direction}", headers=HX).get_data(as_text=True)
    backward = [forward[-1]]
    while True:
        match = re.search(r'<a href="([^"]+)"[^>]*rel="prev"', body)
        if not match:
            break
        body = client.get(match.group(1).replace("&amp;", "&"), headers=HX).get_data(as_text=True)
        backward.append(skus(body))
    assert backward[::-1] == forward and len(forward) == 3


def test_pages_keep_search_and_filter(client, merchandiser, product_factory):
    for n in range(PAGE_SIZE + 3):
        product_factory(f"KEEP-{n:03d}", on_hand=1, threshold=5)
        product_factory(f"SKIP-{n:03d}", on_hand=1, threshold=5)
    listed = _all_pages(client, "/stock?q=keep&filter=low")
    assert len(listed) == PAGE_SIZE + 3 and all(s.startswith("KEEP-") for s in listed)


@pytest.mark.parametrize("query", [
    "sort=price;drop", "dir=sideways", "filter=everything", "after=not-a-cursor",
    "after=WzEsMl0", "after=" + "A" * 5000, "q=" + "x" * 5000,
    "sort=on_hand&after=WyJ0ZXh0IiwxXQ",  # a text cursor on a number column
    "after=WyJcdTAwMDAiLDFd",  # ["\u0000", 1]: NUL in a text cursor
    "sort=available&after=WzEwMDAwMDAwMDAwMDAwMDAwMDAwLDFd",  # a number beyond any column
])
def test_odd_query_strings_never_break_the_list(client, merchandiser, product_factory, query):
    product_factory("RED-1")
    assert client.get("/stock?" + query).status_code == 200


def test_signed_out_list_goes_to_sign_in(client):
    response = client.get("/stock?filter=low")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


# --- adjust --------------------------------------------------------------------------------

def test_adjust_swaps_the_row_and_toasts(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "-3", "reason": "dropped a box"},
                           headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    # The panel again (fresh figures), and the list's row swapped out of band.
    assert body.lstrip().startswith(f'<div id="change-{product.id}"')
    row = re.search(r'<template>\s*(<tr id="product-\d+"[^>]*>)', body).group(1)
    assert f'id="product-{product.id}"' in row and 'hx-swap-oob="true"' in row and "row-updated" in row
    events = json.loads(response.headers["HX-Trigger"])
    assert events["toast"] == {"message": "RED-1: on hand 10 → 7 (−3).", "level": "success"}
    assert events["stock-changed"] == {"product_id": product.id}
    assert events["stock-panel-close"] == {"product_id": product.id}
    assert fresh(product.id).on_hand == 7
    move = db.session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
    assert (move.kind, move.on_hand_delta, move.reason, move.actor_staff_id) == (
        "adjust", -3, "dropped a box", merchandiser.id)


def test_adjust_below_held_units_is_refused_in_place(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=5)
    services.reserve(product.sku, 4, Owner(session_key="s1"), now=now)
    before = movements()
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "-3", "reason": "broken"},
                           headers=HX)
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<div id="change-{product.id}"')
    assert "4 units are held" in body and 'aria-invalid="true"' in body and 'value="-3"' in body
    events = json.loads(response.headers["HX-Trigger"])
    assert events["toast"]["level"] == "error" and "stock-panel-close" not in events
    assert fresh(product.id).on_hand == 5 and movements() == before


@pytest.mark.parametrize("delta, reason, message", [
    ("-", "r", "Not a valid integer value"),
    ("abc", "r", "Not a valid integer value"),
    ("1e3", "r", "Not a valid integer value"),
    ("", "r", "enter how many units"),
    ("0", "r", "must not be 0"),
    (str(2**31), "r", "must be between"),
    (str(-(2**31)), "r", "must be between"),
    (str(2**63), "r", "must be between"),
    ("99999999999999999999999999", "r", "must be between"),
    ("5", "", "say why"),
    ("5", "x" * 501, "is 501 characters long; keep it to 500"),
])
def test_hostile_adjust_input_is_a_form_error_and_changes_nothing(client, merchandiser, product_factory,
                                                                  delta, reason, message):
    product = product_factory("RED-1", on_hand=10)
    before = movements()
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": delta, "reason": reason},
                           headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and 'aria-invalid="true"' in body
    assert fresh(product.id).on_hand == 10 and movements() == before


def test_adjust_beyond_the_stock_ceiling_is_refused(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=999_999_999)
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "1000", "reason": "r"}, headers=HX)
    assert response.status_code == 422 and "would exceed" in response.get_data(as_text=True)
    assert fresh(product.id).on_hand == 999_999_999


def test_markup_and_quotes_in_a_reason_are_kept_as_text_and_escaped(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    reason = '<script>alert("x")</script> \'quoted\' & <b>bold</b>'
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "2", "reason": reason}, headers=HX)
    assert response.status_code == 200
    move = db.session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
    assert move.reason == reason
    page = client.get("/products/RED-1").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_refused_row_keeps_what_was_typed_escaped(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": '"><script>x</script>', "reason": "r"},
                           headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "<script>x" not in body and "&lt;script&gt;x" in body


def test_adjust_without_javascript_redirects_back_with_a_message(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    response = client.post(f"/stock/{product.id}/adjust",
                           data={"delta": "5", "reason": "delivery", "next": "/stock?filter=low"})
    assert response.status_code == 302 and response.headers["Location"] == "/stock?filter=low"
    assert "RED-1: on hand 10 → 15" in client.get("/stock").get_data(as_text=True)


def test_adjust_without_javascript_never_redirects_off_site(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    response = client.post(f"/stock/{product.id}/adjust",
                           data={"delta": "5", "reason": "delivery", "next": "https://evil.example/"})
    assert response.headers["Location"] == "/stock"


def test_refusal_without_javascript_is_a_full_page_with_the_form(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    response = client.post(f"/stock/{product.id}/adjust", data={"delta": "0", "reason": "r"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in body and "must not be 0" in body


def test_adjust_unknown_product_is_404(client, merchandiser):
    assert client.post("/stock/999999/adjust", data={"delta": "1", "reason": "r"}, headers=HX).status_code == 404
    assert client.post(f"/stock/{2**40}/adjust", data={"delta": "1", "reason": "r"}).status_code == 404


# --- count ---------------------------------------------------------------------------------

def test_count_sets_on_hand_and_records_the_check(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10, threshold=2)
    response = client.post(f"/stock/{product.id}/count", data={"counted": "1", "expected": "10"}, headers=HX)
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"] == "RED-1: counted 1 (−9). Low stock alert opened."
    body = response.get_data(as_text=True)
    assert "Out of stock" not in body and ">Low<" in body and "Alert open" in body
    assert fresh(product.id).on_hand == 1 and fresh(product.id).last_stock_check is not None
    move = db.session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
    assert (move.kind, move.on_hand_delta, move.actor_staff_id) == ("count", -9, merchandiser.id)


def test_stale_count_shows_the_current_figure_in_place(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 4, reason="delivery", actor=services.SYSTEM, now=now)
    before = movements()
    response = client.post(f"/stock/{product.id}/count", data={"counted": "7", "expected": "10"}, headers=HX)
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "Stock changed since you loaded this page: on hand is now 14, not 10" in body
    assert '<td class="num" data-col="on_hand">14</td>' in body
    assert 'name="expected" value="14"' in body and 'value="7"' in body  # resubmitting confirms 7
    assert fresh(product.id).on_hand == 14 and movements() == before
    again = client.post(f"/stock/{product.id}/count", data={"counted": "7", "expected": "14"}, headers=HX)
    assert again.status_code == 200 and fresh(product.id).on_hand == 7


def test_count_below_held_units_names_them(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=10)
    services.reserve(product.sku, 6, Owner(session_key="s1"), now=now)
    response = client.post(f"/stock/{product.id}/count", data={"counted": "5", "expected": "10"}, headers=HX)
    assert response.status_code == 409 and "6 units are held" in response.get_data(as_text=True)
    assert fresh(product.id).on_hand == 10


def test_count_form_error_keeps_the_figure_the_counter_saw(client, merchandiser, product_factory, now):
    product = product_factory("RED-1", on_hand=10)
    services.adjust(product.id, 1, reason="delivery", actor=services.SYSTEM, now=now)
    response = client.post(f"/stock/{product.id}/count", data={"counted": "abc", "expected": "10"}, headers=HX)
    assert response.status_code == 422
    assert 'name="expected" value="10"' in response.get_data(as_text=True)  # still detects the change


@pytest.mark.parametrize("counted, expected, note", [
    ("-1", "10", ""), ("abc", "10", ""), (str(2**31), "10", ""), (str(2**63), "10", ""),
    ("", "10", ""), ("5", "", ""), ("5", "-1", ""), ("5", "ten", ""), ("5", "10", "n" * 501),
])
def test_hostile_count_input_is_a_form_error_and_changes_nothing(client, merchandiser, product_factory,
                                                                 counted, expected, note):
    product = product_factory("RED-1", on_hand=10)
    before = movements()
    response = client.post(f"/stock/{product.id}/count",
                           data={"counted": counted, "expected": expected, "note": note}, headers=HX)
    assert response.status_code == 422
    assert fresh(product.id).on_hand == 10 and movements() == before


def test_viewer_sees_no_correction_forms(client, staff_factory, product_factory):
    product_factory("RED-1")
    login(client, staff_factory("viewer"))
    body = client.get("/stock").get_data(as_text=True)
    assert "RED-1" in body and "Adjust or count" not in body and "Import counts" not in body


# --- CSV import ----------------------------------------------------------------------------

def _upload(client, text: str | bytes, name="counts.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/stock/import", data={"step": "check", "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_import_page_renders(client, merchandiser):
    body = client.get("/stock/import").get_data(as_text=True)
    assert "sku,on_hand" in body and 'type="file"' in body


def test_import_dry_run_reports_every_bad_row_and_changes_nothing(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    before = movements()
    response = _upload(client, "sku,on_hand\nRED-1,4\nNOPE,3\nRED-1,2\n<b>X</b>,abc\n")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "unknown SKU NOPE" in body and "appears again" in body and "&lt;b&gt;X&lt;/b&gt;" in body
    assert 'name="step" value="apply"' not in body
    assert fresh(product.id).on_hand == 10 and movements() == before


def _apply_fields(body: str) -> dict:
    """The apply form of a checked import, as the browser would send it."""
    csv_text = re.search(r'<textarea name="csv_text" hidden>(.*?)</textarea>', body, re.S).group(1)
    seen = re.search(r'name="on_hand_seen" type="hidden" value="([^"]*)"', body).group(1)
    return {"step": "apply", "csv_text": csv_text, "on_hand_seen": seen}


def test_import_check_then_apply(client, merchandiser, product_factory):
    red = product_factory("RED-1", on_hand=10)
    blue = product_factory("BLU-1", on_hand=5)
    response = _upload(client, "sku,delta\nRED-1,-4\nBLU-1,0\n")
    body = response.get_data(as_text=True)
    assert 'name="step" value="apply"' in body and "Apply 1 change<" in body and "2 rows" in body
    assert fresh(red.id).on_hand == 10  # the check changed nothing
    applied = client.post("/stock/import", data=_apply_fields(body))
    assert applied.status_code == 302
    assert fresh(red.id).on_hand == 6 and fresh(blue.id).on_hand == 5
    assert "Import applied: 1 product changed" in client.get("/stock").get_data(as_text=True)


@pytest.mark.parametrize("mode, value", [("on_hand", "110"), ("delta", "-2")])
def test_import_apply_refuses_rows_whose_on_hand_moved_since_the_dry_run(
        client, merchandiser, product_factory, staff_factory, now, mode, value):
    red = product_factory("RED-1", on_hand=112)
    blue = product_factory("BLU-1", on_hand=5)
    checked = _upload(client, f"sku,{mode}\nRED-1,{value}\nBLU-1,4\n").get_data(as_text=True)
    assert "112" in checked and ">110<" in checked
    # Another tab adds +5 twice after the dry run.
    other = services.Actor.staff(staff_factory("merchandiser", email="tab@example.com"))
    services.adjust(red.id, 5, reason="delivery", actor=other, now=now)
    services.adjust(red.id, 5, reason="delivery", actor=other, now=now)
    before = movements()

    refused = client.post("/stock/import", data=_apply_fields(checked))
    body = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "Stock changed since you checked the file" in body and "nothing was changed" in body
    assert "on hand was 112 when checked, 122 now" in body
    assert fresh(red.id).on_hand == 122 and fresh(blue.id).on_hand == 5 and movements() == before

    # The refusal shows the new figures; applying that confirms them.
    assert client.post("/stock/import", data=_apply_fields(body)).status_code == 302
    assert fresh(red.id).on_hand == (110 if mode == "on_hand" else 120)
    assert fresh(blue.id).on_hand == (4 if mode == "on_hand" else 9)


def test_import_apply_without_the_checked_figures_changes_nothing(client, merchandiser, product_factory):
    red = product_factory("RED-1", on_hand=10)
    for seen in ("", "ten", "10 10"):
        response = client.post("/stock/import", data={
            "step": "apply", "csv_text": "sku,on_hand\nRED-1,3\n", "on_hand_seen": seen})
        assert response.status_code == 422, seen
        assert "check the file again" in response.get_data(as_text=True)
    assert fresh(red.id).on_hand == 10


def test_import_apply_refused_when_stock_moved_since_the_check(client, merchandiser, product_factory, now):
    red = product_factory("RED-1", on_hand=10)
    services.reserve(red.sku, 8, Owner(session_key="s1"), now=now)
    before = movements()
    response = client.post("/stock/import", data={"step": "apply", "csv_text": "sku,on_hand\nRED-1,3\n",
                                                  "on_hand_seen": "10"})
    assert response.status_code == 409
    assert "8 units are held" in response.get_data(as_text=True)
    assert fresh(red.id).on_hand == 10 and movements() == before


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00bad", "not UTF-8"),
    ("name,qty\nRED-1,3\n", "the header must be"),
    ("sku,on_hand\n", "the file has no rows"),
])
def test_import_bad_files_are_form_errors(client, merchandiser, product_factory, content, message):
    product_factory("RED-1", on_hand=10)
    response = _upload(client, content)
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_import_needs_a_file(client, merchandiser):
    response = client.post("/stock/import", data={"step": "check"}, content_type="multipart/form-data")
    assert response.status_code == 422 and "choose a CSV file" in response.get_data(as_text=True)


@pytest.mark.parametrize("csv_text", ["", "sku,on_hand\nRED-1,3\n" + "x" * 2_000_001])
def test_hostile_import_apply_is_refused_and_changes_nothing(client, merchandiser, product_factory, csv_text):
    product = product_factory("RED-1", on_hand=10)
    before = movements()
    response = client.post("/stock/import", data={"step": "apply", "csv_text": csv_text,
                                                  "on_hand_seen": "10"})
    assert response.status_code == 422
    assert fresh(product.id).on_hand == 10 and movements() == before


@pytest.mark.parametrize("value", [str(2**31), str(2**63), "-1", "1e3", "<i>3</i>", "3.5"])
def test_import_rows_with_hostile_numbers_are_reported(client, merchandiser, product_factory, value):
    product = product_factory("RED-1", on_hand=10)
    body = _upload(client, f"sku,on_hand\nRED-1,{value}\n").get_data(as_text=True)
    assert "badge-out\">Wrong</span>" in body and 'name="step" value="apply"' not in body
    assert "<i>3</i>" not in body
    assert fresh(product.id).on_hand == 10


@pytest.mark.parametrize("q", ["%%%", "_%_", "%_%_%", "a%"])
def test_a_search_without_three_letters_or_digits_matches_a_whole_sku_only(
        client, merchandiser, product_factory, q):
    product_factory("A%B", name="percent %%% here")
    body = client.get("/stock", query_string={"q": q}, headers=HX).get_data(as_text=True)
    assert skus(body) == [] and "Type at least 3 letters or digits" in body


# --- search by words, tab counts, the range, the row's panel (issue 14 items 1, 5, 6) ---------

@pytest.fixture
def catalogued(product_factory, now):
    """A product with catalogue fields (set as the catalogue sync would; no stock change)."""
    def make(sku, *, category=None, barcode=None, active=True, **kwargs):
        product = product_factory(sku, **kwargs)
        db.session.execute(update(Product).where(Product.id == product.id)
                           .values(category=category, barcode=barcode))
        db.session.commit()
        if not active:
            services.update_product(product.id, actor=services.SYSTEM, now=now, is_active=False)
        return product
    return make


def test_search_by_words_in_any_order_and_case_across_sku_name_barcode_category(
        client, merchandiser, catalogued):
    catalogued("SCK-MER-1", name="Merino sock grey", category="Socks", barcode="4006381333931")
    catalogued("HAT-OAT-2", name="Beanie oat", category="Hats")
    catalogued("SCK-CTN-3", name="Cotton sock white", category="Socks")

    def found(q):
        return skus(client.get("/stock", query_string={"q": q}, headers=HX).get_data(as_text=True))

    assert found("merino sock") == ["SCK-MER-1"]
    assert found("SOCK Merino") == ["SCK-MER-1"]
    assert found("beanie oat") == found("oat beanie") == ["HAT-OAT-2"]
    assert found("socks white") == ["SCK-CTN-3"]  # a category word and a name word
    assert found("hats oat-2") == ["HAT-OAT-2"]  # category and part of the SKU
    assert found("3339 grey") == ["SCK-MER-1"]  # part of the barcode
    assert found("sck sock") == ["SCK-CTN-3", "SCK-MER-1"]
    assert found("merino beanie") == []  # every word must match one product
    assert found("sock 1") == ["SCK-MER-1"]  # a short word narrows what the long ones found


def test_short_search_matches_a_whole_sku_in_any_case(client, merchandiser, product_factory):
    product_factory("AB", name="Short")
    body = client.get("/stock?q=ab", headers=HX).get_data(as_text=True)
    assert skus(body) == ["AB"]


def _tab_counts(body: str) -> dict[str, int]:
    return {key: int(n.replace(",", "")) for key, n in
            re.findall(r'data-tab-count="(\w+)">([\d,]+)<', body)}


def test_tabs_count_their_products_for_the_search_and_category(client, merchandiser, catalogued, now):
    catalogued("MUG-1", name="Red mug", on_hand=50, threshold=5, category="Mugs")
    catalogued("MUG-2", name="Blue mug", on_hand=3, threshold=5, category="Mugs")
    catalogued("MUG-3", name="Red mug large", on_hand=0, threshold=5, category="Mugs")
    catalogued("HAT-1", name="Red hat", on_hand=2, threshold=5, category="Hats")
    catalogued("HAT-2", name="Old hat", on_hand=20, threshold=5, category="Hats", active=False)
    everything = client.get("/stock", headers=HX).get_data(as_text=True)
    assert _tab_counts(everything) == {"all": 5, "low": 2, "out": 1, "inactive": 1}
    assert "1–5 of 5" in everything
    red = client.get("/stock?q=red", headers=HX).get_data(as_text=True)
    assert _tab_counts(red) == {"all": 3, "low": 1, "out": 1, "inactive": 0}
    red_low = client.get("/stock?q=red&filter=low", headers=HX).get_data(as_text=True)
    assert skus(red_low) == ["HAT-1"] and "1–1 of 1" in red_low
    mugs = client.get("/stock?category=Mugs&filter=out", headers=HX).get_data(as_text=True)
    assert _tab_counts(mugs) == {"all": 3, "low": 1, "out": 1, "inactive": 0}
    nothing = client.get("/stock?q=red&filter=inactive", headers=HX).get_data(as_text=True)
    assert skus(nothing) == [] and _tab_counts(nothing)["all"] == 3


@pytest.mark.parametrize("q", ["", "item"])
def test_the_range_counts_along_the_pages_and_back(client, merchandiser, product_factory, q):
    for i in range(PAGE_SIZE * 2 + 7):
        product_factory(f"ITEM-{i:03}", name=f"Item {i}")
    total = PAGE_SIZE * 2 + 7
    first = client.get("/stock", query_string={"q": q}, headers=HX).get_data(as_text=True)
    assert f"1–{PAGE_SIZE} of {total}" in first
    next_url = unescape(re.search(r'<a href="([^"]+)"[^>]*rel="next"', first).group(1))
    second = client.get(next_url, headers=HX).get_data(as_text=True)
    assert f"{PAGE_SIZE + 1}–{PAGE_SIZE * 2} of {total}" in second
    third_url = unescape(re.search(r'<a href="([^"]+)"[^>]*rel="next"', second).group(1))
    third = client.get(third_url, headers=HX).get_data(as_text=True)
    assert f"{PAGE_SIZE * 2 + 1}–{total} of {total}" in third
    back_url = unescape(re.search(r'<a href="([^"]+)"[^>]*rel="prev"', third).group(1))
    assert f"{PAGE_SIZE + 1}–{PAGE_SIZE * 2} of {total}" in client.get(back_url, headers=HX).get_data(as_text=True)
    # A start the URL makes up cannot put the range past the end.
    assert f"{total - 6}–{total} of {total}" in client.get(
        third_url.replace(f"start={PAGE_SIZE * 2 + 1}", "start=99999"), headers=HX).get_data(as_text=True)


def test_rows_carry_no_forms_the_panel_is_fetched(client, merchandiser, product_factory):
    product = product_factory("RED-1", on_hand=10)
    body = client.get("/stock", headers=HX).get_data(as_text=True)
    row = re.search(r'<tr id="product-\d+".*?</tr>', body, re.S).group(0)
    assert "<form" not in row and "csrf_token" not in row
    assert f'hx-get="/stock/{product.id}/change"' in row and 'hx-target="#stock-panel-body"' in row
    panel = client.get(f"/stock/{product.id}/change", headers=HX)
    text = panel.get_data(as_text=True)
    assert panel.status_code == 200 and "<html" not in text
    assert text.count("<form") == 2 and text.count('name="submit_token"') == 2
    assert 'name="expected" value="10"' in text and 'id="delta-' in text and 'id="counted-' in text
    # Without JavaScript the row's link opens the same forms on a page of their own, and
    # they go back to the list it was opened from.
    alone = client.get(f"/stock/{product.id}/change",
                       headers={"Referer": "http://localhost/stock?q=red"}).get_data(as_text=True)
    assert "<html" in alone and 'name="next" value="/stock?q=red"' in alone
    elsewhere = client.get(f"/stock/{product.id}/change",
                           headers={"Referer": "https://evil.example/stock"}).get_data(as_text=True)
    assert 'name="next" value="/stock"' in elsewhere


def test_the_panel_needs_the_right_to_change_stock(client, staff_factory, product_factory):
    product = product_factory("RED-1")
    login(client, staff_factory("viewer"))
    assert client.get(f"/stock/{product.id}/change", headers=HX).status_code == 403
    login(client, staff_factory("merchandiser", email="m2@example.com"))
    assert client.get("/stock/999999/change", headers=HX).status_code == 404


def test_count_import_finds_skus_in_any_case(client, merchandiser, product_factory):
    blue = product_factory("STA-103-BLUE", on_hand=10)
    body = _upload(client, "sku,on_hand\nsta-103-blue,7\nSTA-103-Blue,8\n").get_data(as_text=True)
    assert "unknown SKU" not in body and "appears again (first on line 2)" in body
    checked = _upload(client, "sku,on_hand\nsta-103-blue,7\n").get_data(as_text=True)
    assert client.post("/stock/import", data=_apply_fields(checked)).status_code == 302
    assert fresh(blue.id).on_hand == 7


# --- per location ---------------------------------------------------------------------------

def _shop_with_a_store(now, product_factory):
    """MAIN plus STORE-1; BOTH-1 has 8 at MAIN and 3 at STORE-1 (1 held there)."""
    from dashboard.services.locations import create_location
    create_location("STORE-1", "High Street store", kind="store", priority=200,
                    actor=services.SYSTEM, now=now)
    both = product_factory("BOTH-1", on_hand=8, threshold=2)
    services.adjust(both.id, 3, reason="delivery", location="STORE-1", actor=services.SYSTEM, now=now)
    services.reserve(both.sku, 1, Owner(session_key="s1"), now=now, location="STORE-1")
    product_factory("MAIN-1", on_hand=5, threshold=2)
    return both


def _row(body: str, sku: str) -> str:
    return re.search(rf'<tr id="product-\d+"[^>]*>\s*<td class="nowrap"><a href="[^"]+">{sku}</a>.*?</tr>',
                     body, re.S).group(0)


def _figures(row: str) -> list[str]:
    return re.findall(r'<td class="num[^"]*"[^>]*>([\d,]+)</td>', row)


def test_one_location_shows_its_own_figures_and_tabs(client, merchandiser, product_factory, now):
    _shop_with_a_store(now, product_factory)
    body = client.get("/stock?location=store-1", headers=HX).get_data(as_text=True)
    assert '<option value="STORE-1" selected>' in body
    assert _figures(_row(body, "BOTH-1")) == ["3", "1", "2", "2"]  # on hand, held, available, threshold
    assert _figures(_row(body, "MAIN-1")) == ["0", "0", "0", "2"]
    # Low and out are the location's: at STORE-1, BOTH-1 is low (2 <= 2) and MAIN-1 is out.
    assert skus(client.get("/stock?location=STORE-1&filter=low", headers=HX).get_data(as_text=True)) == ["BOTH-1"]
    assert skus(client.get("/stock?location=STORE-1&filter=out", headers=HX).get_data(as_text=True)) == ["MAIN-1"]
    assert skus(client.get("/stock?filter=out", headers=HX).get_data(as_text=True)) == []
    # A search at the location too, sorted by its figures.
    assert skus(client.get("/stock?location=STORE-1&q=main&filter=out", headers=HX).get_data(as_text=True)) == ["MAIN-1"]
    assert skus(client.get("/stock?location=STORE-1&sort=available&dir=desc", headers=HX).get_data(as_text=True)) == ["BOTH-1", "MAIN-1"]


def test_all_locations_shows_totals_with_a_column_per_location(client, merchandiser, product_factory, now):
    _shop_with_a_store(now, product_factory)
    body = client.get("/stock", headers=HX).get_data(as_text=True)
    assert '<option value="" selected>All locations</option>' in body
    # Totals, then available at MAIN and at STORE-1, then the threshold.
    assert _figures(_row(body, "BOTH-1")) == ["11", "1", "10", "8", "2", "2"]
    assert 'data-location="STORE-1"' in body


def test_one_location_shop_has_no_selector_nor_columns(client, merchandiser, product_factory):
    product_factory("RED-1", on_hand=4)
    body = client.get("/stock", headers=HX).get_data(as_text=True)
    assert 'name="location"' not in body and "data-location" not in body
    assert _figures(_row(body, "RED-1")) == ["4", "0", "4", "2"]


def test_location_survives_paging_and_filters(client, merchandiser, product_factory, now):
    from dashboard.services.locations import create_location
    create_location("STORE-1", "High Street store", kind="store", actor=services.SYSTEM, now=now)
    for n in range(PAGE_SIZE + 3):
        product_factory(f"P-{n:03d}", on_hand=1)
    body = client.get("/stock?location=STORE-1", headers=HX).get_data(as_text=True)
    assert "location=STORE-1" in re.search(r'<a href="([^"]+)"[^>]*rel="next"', body).group(1)
    assert all("location=STORE-1" in link for link in re.findall(r'href="(/stock\?[^"]*filter=[^"]*)"', body))
    assert len(_all_pages(client, "/stock?location=STORE-1&sort=on_hand")) == PAGE_SIZE + 3


def test_unknown_location_says_so_and_shows_all(client, merchandiser, product_factory, now):
    _shop_with_a_store(now, product_factory)
    response = client.get("/stock?location=NOWHERE%3Cb%3E", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "There is no location" in body and "<b>" not in body
    assert _figures(_row(body, "BOTH-1"))[:3] == ["11", "1", "10"]


def test_the_panel_of_a_list_at_a_location_changes_stock_there(client, merchandiser, product_factory, now):
    both = _shop_with_a_store(now, product_factory)
    list_body = client.get("/stock?location=STORE-1", headers=HX).get_data(as_text=True)
    assert f"/stock/{both.id}/change?location=STORE-1" in list_body
    panel = client.get(f"/stock/{both.id}/change?location=STORE-1", headers=HX).get_data(as_text=True)
    assert "At STORE-1" in panel and 'name="location" value="STORE-1"' in panel
    assert 'name="expected" value="3"' in panel
    answer = client.post(f"/stock/{both.id}/adjust", headers=HX, data={
        "delta": "2", "reason": "delivery", "location": "STORE-1", "next": "/stock?location=STORE-1"})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and _figures(_row(body, "BOTH-1")) == ["5", "1", "4", "2"]
    assert client.get(f"/stock/{both.id}/change?location=NOWHERE", headers=HX).status_code == 404
    # A form error keeps the panel at its location, so the retry changes stock there too.
    refused = client.post(f"/stock/{both.id}/adjust", headers=HX, data={
        "delta": "0", "reason": "x", "location": "STORE-1", "next": "/stock?location=STORE-1"})
    assert refused.status_code == 422
    assert 'name="location" value="STORE-1"' in refused.get_data(as_text=True)


def test_the_panel_of_all_locations_says_it_changes_the_default(client, merchandiser, product_factory, now):
    both = _shop_with_a_store(now, product_factory)
    panel = client.get(f"/stock/{both.id}/change", headers=HX).get_data(as_text=True)
    assert "At MAIN" in panel and "the default location" in panel and 'name="expected" value="8"' in panel
    answer = client.post(f"/stock/{both.id}/count", headers=HX, data={
        "counted": "6", "expected": "8", "next": "/stock"})
    body = answer.get_data(as_text=True)
    # The row keeps the totals and a column per location.
    assert answer.status_code == 200 and _figures(_row(body, "BOTH-1")) == ["9", "1", "8", "6", "2", "2"]


def test_import_with_a_location_column_checks_and_applies_per_location(client, merchandiser, product_factory, now):
    both = _shop_with_a_store(now, product_factory)
    assert "<code>location</code> column" in client.get("/stock/import").get_data(as_text=True)
    checked = _upload(client, "sku,on_hand,location\nBOTH-1,5,STORE-1\nBOTH-1,8,\nBOTH-1,1,NOWHERE\n")
    body = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "<th>Location</th>" in body
    assert "unknown location NOWHERE" in body and "<td>MAIN</td>" in body
    good = _upload(client, "sku,on_hand,location\nBOTH-1,5,STORE-1\n").get_data(as_text=True)
    seen = re.search(r'name="on_hand_seen"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="on_hand_seen"', good)
    applied = client.post("/stock/import", data={
        "step": "apply", "csv_text": "sku,on_hand,location\nBOTH-1,5,STORE-1\n",
        "on_hand_seen": seen.group(1) or seen.group(2)})
    assert applied.status_code == 302 and fresh(both.id).on_hand == 13
