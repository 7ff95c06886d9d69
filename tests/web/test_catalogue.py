"""Catalogue pages: the product form, deactivation, the product import, export, the
category filter and scan to find."""
from __future__ import annotations

import io

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Product, StockMovement
from dashboard.services import Owner, reserve
from dashboard.services.product_import import digest_of
from tests.helpers.web import HX


def product_row(sku: str):
    db.session.expire_all()
    return db.session.execute(
        select(Product.name, Product.price, Product.barcode, Product.category, Product.supplier,
               Product.on_hand, Product.is_active).where(Product.sku == sku)).first()


def test_a_merchandiser_creates_a_product_with_opening_stock(client, merchandiser):
    form = {"sku": "MUG-1", "name": "Mug", "price": "9.95", "barcode": "4006381333931",
            "category": "Kitchen", "supplier": "Acme", "low_stock_threshold": "3",
            "is_active": "y", "on_hand": "12"}
    response = client.post("/products/new", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith("/products/MUG-1")
    assert tuple(product_row("MUG-1"))[2:] == ("4006381333931", "Kitchen", "Acme", 12, True)
    assert db.session.scalar(select(StockMovement.kind)) == "receive"
    again = client.post("/products/new", data=form)
    assert again.status_code == 409 and "already exists" in again.get_data(as_text=True)


def test_the_form_shows_each_wrong_field_and_creates_nothing(client, merchandiser):
    response = client.post("/products/new", data={
        "sku": "MUG-1", "name": "", "price": "abc", "barcode": "4006381333932",
        "low_stock_threshold": "3"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "enter the product&#39;s name" in page and "price must be a number" in page
    assert "wrong check digit" in page
    assert db.session.scalars(select(Product)).all() == []


def test_editing_changes_catalogue_fields_but_never_stock(client, merchandiser, product_factory):
    product_factory("MUG-1", name="Mug", on_hand=7)
    page = client.get("/products/MUG-1/edit").get_data(as_text=True)
    assert 'value="Mug"' in page and "Opening stock" not in page
    response = client.post("/products/MUG-1/edit", data={
        "name": "Big mug", "price": "4.50", "barcode": "", "category": "Kitchen",
        "supplier": "", "low_stock_threshold": "2", "is_active": "y", "on_hand": "99"})
    assert response.status_code == 302
    assert tuple(product_row("MUG-1")) == ("Big mug", 4.5, None, "Kitchen", None, 7, True)


def test_deactivation_asks_first_and_says_new_holds_will_be_refused(
        client, merchandiser, product_factory, now):
    product_factory("MUG-1", on_hand=7)
    reserve("MUG-1", 2, Owner(session_key="s"), now=now)
    reserve("MUG-1", 1, Owner(session_key="t"), now=now)
    page = client.get("/products/MUG-1/deactivate").get_data(as_text=True)
    assert "New holds will be refused" in page and "3 active holds" not in page
    assert "2 active holds</strong> stay" in page
    assert product_row("MUG-1").is_active
    response = client.post("/products/MUG-1/deactivate", data={"confirm": "yes"})
    assert response.status_code == 302 and not product_row("MUG-1").is_active


def test_import_check_then_apply_creates_and_updates(client, merchandiser, product_factory):
    product_factory("OLD-1", name="Old", on_hand=4)
    data = b"Item;Title;Price;EAN\nOLD-1;Old renamed;1,50;\nNEW-1;New;2;96385074\n"
    checked = client.post("/stock/products-import", content_type="multipart/form-data",
                          data={"file": (io.BytesIO(data), "shop.csv")}, headers=HX)
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200 and '<div id="import-report">' in page
    assert "name: Old → Old renamed; price: 0.00 → 1.50" in page
    assert "Apply: create 1, update 1" in page and digest_of(data) in page
    assert product_row("NEW-1") is None
    applied = client.post("/stock/products-import/apply", content_type="multipart/form-data",
                          data={"file": (io.BytesIO(data), "shop.csv"), "digest": digest_of(data)},
                          headers=HX)
    assert applied.status_code == 204 and applied.headers["HX-Redirect"] == "/stock"
    assert product_row("NEW-1").barcode == "96385074"
    assert product_row("OLD-1").name == "Old renamed"


def test_import_bad_rows_are_listed_and_another_file_cannot_be_applied(client, merchandiser):
    data = b"sku,name,barcode\nA,Mug,123\nB,Cup,\n"
    page = client.post("/stock/products-import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "shop.csv")}).get_data(as_text=True)
    assert "1 wrong" in page and "8, 12, 13 or 14 digits, not 3" in page
    assert "Apply:" not in page
    good = b"sku,name\nB,Cup\n"
    refused = client.post("/stock/products-import/apply", content_type="multipart/form-data",
                          data={"file": (io.BytesIO(good), "x.csv"), "digest": digest_of(data)})
    assert refused.status_code == 422 and "not the file that was checked" in refused.get_data(
        as_text=True)
    assert db.session.scalars(select(Product)).all() == []


def test_import_refuses_a_file_that_is_not_utf8(client, merchandiser):
    response = client.post("/stock/products-import", content_type="multipart/form-data",
                           data={"file": (io.BytesIO("sku,name\nA,Caf\u00e9\n".encode("cp1252")),
                                          "shop.csv")})
    assert response.status_code == 422 and "not UTF-8" in response.get_data(as_text=True)


def test_the_export_round_trips_through_the_import(client, merchandiser, product_factory, now):
    client.post("/products/new", data={"sku": "MUG-1", "name": "Mug, large", "price": "9.95",
                                       "barcode": "4006381333931", "category": "Kitchen",
                                       "low_stock_threshold": "3", "is_active": "y",
                                       "on_hand": "5"})
    product_factory("CUP-1", name="Cup", on_hand=0)
    exported = client.get("/stock/products.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    data = exported.get_data()
    assert b'MUG-1,"Mug, large",9.95,4006381333931,Kitchen,,5,0,5,3,yes' in data
    page = client.post("/stock/products-import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "export.csv")}).get_data(as_text=True)
    assert "<strong>0</strong> new products" in page and "<strong>0</strong> updated" in page
    assert "2 unchanged" in page and "nothing to apply" in page


def test_the_stock_list_filters_by_category(client, merchandiser, product_factory, now):
    client.post("/products/new", data={"sku": "MUG-1", "name": "Mug", "price": "1",
                                       "category": "Kitchen", "low_stock_threshold": "1"})
    client.post("/products/new", data={"sku": "TEE-1", "name": "Tee", "price": "1",
                                       "category": "Shirts", "low_stock_threshold": "1"})
    page = client.get("/stock?category=Kitchen").get_data(as_text=True)
    assert '<option value="Shirts">Shirts</option>' in page
    table = page.split('id="stock-table"')[1]
    assert "MUG-1" in table and "TEE-1" not in table
    partial = client.get("/stock?category=Shirts&q=tee", headers=HX).get_data(as_text=True)
    assert "TEE-1" in partial and "MUG-1" not in partial


def test_scan_to_find_opens_the_product_of_an_exact_barcode_or_sku(client, merchandiser):
    client.post("/products/new", data={"sku": "MUG-1", "name": "Mug", "price": "1",
                                       "barcode": "4006381333931", "low_stock_threshold": "1"})
    by_barcode = client.get("/stock?q=4006381333931&scan=1")
    assert by_barcode.status_code == 302 and by_barcode.headers["Location"] == "/products/MUG-1"
    assert client.get("/stock?q=MUG-1&scan=1").headers["Location"] == "/products/MUG-1"
    # Typing (no scan=1) lists matches; a code nothing has lists nothing, no redirect.
    assert client.get("/stock?q=MUG-1").status_code == 200
    assert client.get("/stock?q=400638133393&scan=1").status_code == 200


def test_scan_to_find_matches_a_barcode_written_with_other_leading_zeros(client, merchandiser):
    """A UPC-A on file, the scanner reads EAN-13 (and the other way round)."""
    client.post("/products/new", data={"sku": "CAN-1", "name": "Can", "price": "1",
                                       "barcode": "036000291452", "low_stock_threshold": "1"})
    client.post("/products/new", data={"sku": "BOX-1", "name": "Box", "price": "1",
                                       "barcode": "0012345678905", "low_stock_threshold": "1"})
    assert client.get("/stock?q=0036000291452&scan=1").headers["Location"] == "/products/CAN-1"
    assert client.get("/stock?q=012345678905&scan=1").headers["Location"] == "/products/BOX-1"
    assert client.get("/stock?q=36000291452&scan=1").status_code == 200  # 11 digits: no GTIN


def test_without_htmx_the_apply_form_asks_for_the_checked_file_again(client, merchandiser):
    data = b"sku,name\nA,Mug\n"
    page = client.post("/stock/products-import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "shop.csv")}).get_data(as_text=True)
    assert "Choose the checked file again" in page
    fragment = client.post("/stock/products-import", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(data), "shop.csv")}, headers=HX)
    assert "Choose the checked file again" not in fragment.get_data(as_text=True)
    missing = client.post("/stock/products-import/apply", data={"digest": digest_of(data)})
    assert missing.status_code == 422 and "choose the checked file again" in missing.get_data(
        as_text=True)
