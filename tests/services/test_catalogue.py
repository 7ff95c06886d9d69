"""Catalogue sync in the service layer: field rules (check digits), upsert, batch all-or-nothing."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Product, StockAlert, StockMovement
from dashboard.services import SYSTEM, check
from dashboard.services import catalogue_fields as fields
from dashboard.services.catalogue import CatalogueRejected, upsert_product, upsert_products
from dashboard.services.errors import InvalidInput


@pytest.mark.parametrize("code", ["96385074", "036000291452", "4006381333931", "10614141000415"])
def test_gtins_with_a_right_check_digit_are_barcodes(code):
    assert fields.barcode(code) == code
    assert fields.barcode(f" {code[:4]} {code[4:]} ") == code  # spaces as printed under bars


@pytest.mark.parametrize("code, says", [
    ("4006381333932", "wrong check digit (the last digit should be 1)"),
    ("400638133393", "wrong check digit"),
    ("12345", "8, 12, 13 or 14 digits, not 5"),
    ("36000291452", "a leading 0 lost"),
    ("4.00638E+12", "shortened by a spreadsheet"),
    ("40063813339X", "digits only"),
])
def test_wrong_barcodes_are_refused_with_the_reason(code, says):
    with pytest.raises(fields.FieldError, match=says.replace("(", r"\(").replace(")", r"\)")):
        fields.barcode(code)


def test_blank_category_supplier_and_barcode_mean_none_and_text_is_trimmed():
    assert fields.category("  ") is None and fields.barcode("") is None
    assert fields.supplier("  Acme Ltd ") == "Acme Ltd"
    with pytest.raises(fields.FieldError, match="at most 100"):
        fields.category("x" * 101)


@pytest.mark.parametrize("text, value", [("12.5", Decimal("12.50")), ("12,50", Decimal("12.50")),
                                         ("$3", Decimal("3.00")), ("0", Decimal("0.00"))])
def test_prices_from_files_are_read_as_people_write_them(text, value):
    assert fields.price(text) == value


@pytest.mark.parametrize("text", ["-1", "abc", "1.234", "NaN", "1e9"])
def test_wrong_prices_are_refused(text):
    with pytest.raises(fields.FieldError):
        fields.price(text)


def test_put_creates_with_opening_stock_as_a_receive_line(now):
    outcome, product = upsert_product(
        "TEE-1", {"name": "Tee", "price": "9.90", "barcode": "4006381333931",
                  "category": " Shirts ", "on_hand": 12}, actor=SYSTEM, now=now)
    assert outcome.status == "created" and outcome.on_hand == 12
    assert (product.sku, product.on_hand, product.category, product.price) == (
        "TEE-1", 12, "Shirts", Decimal("9.90"))
    line = db.session.scalars(select(StockMovement)).one()
    assert (line.kind, line.on_hand_delta, line.on_hand_after) == ("receive", 12, 12)
    assert check() == []


def test_put_updates_only_the_fields_given_and_moves_updated_at(product_factory, now):
    from datetime import timedelta
    product_factory("MUG-1", name="Mug", on_hand=5, threshold=2)
    later = now + timedelta(minutes=5)
    outcome, product = upsert_product("MUG-1", {"supplier": "Acme", "low_stock_threshold": 7},
                                      actor=SYSTEM, now=later)
    assert outcome.status == "updated"
    assert outcome.changes == {"supplier": (None, "Acme"), "low_stock_threshold": (2, 7)}
    assert (product.name, product.on_hand, product.updated_at) == ("Mug", 5, later)
    # Threshold 7 with 5 available: the alert is raised in the same transaction.
    assert db.session.scalars(select(StockAlert.kind)).one() == "LOW_STOCK"
    again, _ = upsert_product("MUG-1", {"supplier": "Acme"}, actor=SYSTEM,
                              now=later + timedelta(minutes=1))
    assert again.status == "unchanged"
    assert db.session.scalar(select(Product.updated_at)) == later


def test_put_refuses_on_hand_for_an_existing_product(product_factory, now):
    product_factory("MUG-1", on_hand=5)
    with pytest.raises(InvalidInput, match="stock changes go through receive, adjust or count"):
        upsert_product("MUG-1", {"on_hand": 9}, actor=SYSTEM, now=now)
    assert db.session.scalar(select(Product.on_hand)) == 5


def test_put_refuses_a_new_product_without_a_name(now):
    with pytest.raises(InvalidInput) as refused:
        upsert_product("NEW-1", {"price": "1"}, actor=SYSTEM, now=now)
    assert refused.value.fields == {"name": "name is required for a new product"}


def test_a_barcode_of_another_product_is_refused(product_factory, now):
    upsert_product("A", {"name": "A", "barcode": "96385074"}, actor=SYSTEM, now=now)
    with pytest.raises(InvalidInput, match="barcode 96385074 already belongs to A"):
        upsert_product("B", {"name": "B", "barcode": "96385074"}, actor=SYSTEM, now=now)


def test_batch_is_all_or_nothing_with_every_wrong_row_listed(now):
    good = {"sku": "OK-1", "name": "Fine", "on_hand": 3}
    with pytest.raises(CatalogueRejected) as refused:
        upsert_products([good, {"sku": "BAD-1", "name": "x", "barcode": "123"},
                         {"sku": "", "name": "y"}, {"sku": "OK-1", "name": "again"}],
                        actor=SYSTEM, now=now)
    assert [(p.index, p.sku, p.field) for p in refused.value.problems] == [
        (1, "BAD-1", "barcode"), (2, "", "sku"), (3, "OK-1", "sku")]
    assert db.session.scalars(select(Product)).all() == []


def test_batch_creates_updates_and_two_products_may_swap_barcodes(now):
    upsert_products([{"sku": "A", "name": "A", "barcode": "96385074"},
                     {"sku": "B", "name": "B", "barcode": "4006381333931"}], actor=SYSTEM, now=now)
    outcomes = upsert_products(
        [{"sku": "A", "barcode": "4006381333931"}, {"sku": "B", "barcode": "96385074"},
         {"sku": "C", "name": "C", "on_hand": 4, "is_active": False}], actor=SYSTEM, now=now)
    assert [(o.sku, o.status) for o in outcomes] == [
        ("A", "updated"), ("B", "updated"), ("C", "created")]
    rows = db.session.execute(select(Product.sku, Product.barcode, Product.is_active,
                                     Product.on_hand).order_by(Product.sku)).all()
    assert [tuple(r) for r in rows] == [("A", "4006381333931", True, 0),
                                        ("B", "96385074", True, 0), ("C", None, False, 4)]
    assert check() == []


def test_batch_refuses_more_than_a_thousand_products(now):
    with pytest.raises(InvalidInput, match="at most 1,000"):
        upsert_products([{"sku": f"S{i}", "name": "n"} for i in range(1001)],
                        actor=SYSTEM, now=now)
