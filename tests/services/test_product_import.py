"""The product CSV import: forgiving of real files, exact about bad rows, all or nothing."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Product, StockMovement
from dashboard.queries.catalogue import export_rows
from dashboard.services import SYSTEM, check
from dashboard.services.catalogue_csv import write
from dashboard.services.errors import ImportRejected, InvalidInput
from dashboard.services.product_import import check_products, import_products


def products() -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        select(Product.sku, Product.name, Product.price, Product.barcode, Product.category,
               Product.on_hand).order_by(Product.sku))]


@pytest.mark.parametrize("text", [
    "SKU,Name,Price,EAN,Department,Qty\r\nA-1,Mug,9.95,4006381333931,Kitchen,5\r\n",
    "\ufeff sku ;TITLE;price;Barcode;category;On Hand\nA-1;Mug;9,95;4006381333931;Kitchen;5\n",
    "Item Code\tDescription\tUnit Price\tGTIN\tDept\tStock\nA-1\tMug\t9.95\t4006381333931\tKitchen\t5\n",
    'item,name,price,upc,category,quantity\n"A-1","Mug","9.95","=""4006381333931""",Kitchen,5\n',
])
def test_headers_delimiters_bom_and_excel_quoting_are_all_understood(text, now):
    report = import_products(text.encode(), actor=SYSTEM, now=now)
    assert report.bad_rows == [] and [sku for _, sku, _ in report.creates] == ["A-1"]
    assert products() == [("A-1", "Mug", Decimal("9.95"), "4006381333931", "Kitchen", 5)]
    assert db.session.scalar(select(StockMovement.kind)) == "receive"
    assert check() == []


def test_quoted_cells_keep_their_delimiters_and_newlines(now):
    text = 'SKU,Name,Supplier\nA-1,"Mug, large","Acme ""Best""\nLtd"\n'
    import_products(text.encode(), actor=SYSTEM, now=now)
    row = db.session.execute(select(Product.name, Product.supplier)).one()
    assert tuple(row) == ("Mug, large", 'Acme "Best" Ltd')  # a cell's line break: a space


def test_the_dry_run_lists_creates_updates_and_bad_rows_by_row_number(product_factory, now):
    product_factory("OLD-1", name="Old", on_hand=4)
    text = ("sku,name,price,barcode,on_hand\n"
            "OLD-1,Old renamed,2.50,,9\n"
            "NEW-1,New,1.00,96385074,3\n"
            "BAD-1,Bad,-1,,\n"
            ",No sku,1,,\n"
            "NEW-1,Again,1,,\n"
            "BAD-2,,1,123,\n")
    report = check_products(text.encode())
    assert [(row, sku) for row, sku, _ in report.creates] == [(3, "NEW-1")]
    assert report.updates == [(2, "OLD-1", {"name": ("Old", "Old renamed"),
                                            "price": (Decimal("0.00"), Decimal("2.50"))})]
    assert [(row, sku) for row, sku, _ in report.bad_rows] == [
        (4, "BAD-1"), (5, ""), (6, "NEW-1"), (7, "BAD-2")]
    assert "price must be between 0" in report.bad_rows[0][2]
    assert "appears again (first at 3)" in report.bad_rows[2][2]
    assert report.row_notes == [(2, "OLD-1", "on hand 9 ignored (it is 4): count stock with the"
                                             " count import")]
    with pytest.raises(ImportRejected, match="4 of 6 rows are wrong; nothing was changed"):
        import_products(text.encode(), actor=SYSTEM, now=now)
    assert products() == [("OLD-1", "Old", Decimal("0.00"), None, None, 4)]


def test_other_encodings_and_files_without_a_sku_column_are_refused_clearly():
    with pytest.raises(InvalidInput, match="not UTF-8 text .* Windows-1252"):
        check_products("sku,name\nA,Caf\u00e9\n".encode("cp1252"))
    with pytest.raises(InvalidInput, match="UTF-16"):
        check_products("sku,name\nA,b\n".encode("utf-16"))
    with pytest.raises(InvalidInput, match="no SKU column.*found: Name, Price"):
        check_products(b"Name,Price\nMug,1\n")
    with pytest.raises(InvalidInput, match="no rows"):
        check_products(b"sku,name\n\n")


def test_unknown_and_duplicate_columns_are_named_in_notes():
    report = check_products(b"SKU,Name,Description,Colour\nA,Mug,A mug,red\n")
    assert report.notes == ["column \u201cDescription\u201d ignored: \u201cName\u201d is used for name",
                            "columns ignored: \u201cColour\u201d"]


def test_a_row_with_extra_cells_is_a_bad_row_not_a_shifted_one():
    report = check_products(b"sku;name;price\nA;Mug;1;50\nB;Cup;2\n")
    assert [(row, sku) for row, sku, _ in report.bad_rows] == [(2, "A")]
    assert [sku for _, sku, _ in report.creates] == ["B"]


def test_the_export_imports_back_unchanged(product_factory, now):
    import_products(b"sku,name,price,barcode,category,supplier,qty,threshold,active\n"
                    b"A,Mug,9.95,4006381333931,Kitchen,Acme,5,2,yes\n"
                    b"B,\"Cup, small\",0,,,,0,10,no\n", actor=SYSTEM, now=now)
    out = io.StringIO()
    write(export_rows(), out)
    report = check_products(out.getvalue().encode())
    assert (report.creates, report.updates, report.bad_rows, report.row_notes) == ([], [], [], [])
    assert report.unchanged == 2 and report.notes == []


def test_a_few_thousand_rows_apply_in_one_transaction(now):
    rows = "".join(f"S-{i:05d},Product {i},{i % 100}.50,,Dept {i % 7},,{i % 9}\n"
                   for i in range(3000))
    report = import_products(("sku,name,price,barcode,category,supplier,on hand\n" + rows)
                             .encode(), actor=SYSTEM, now=now)
    assert len(report.creates) == 3000 and report.applied
    assert db.session.scalar(select(func.count()).select_from(Product)) == 3000
    again = import_products(("sku,name,category\n" + "".join(
        f"S-{i:05d},Product {i},Dept {i % 5}\n" for i in range(3000))).encode(),
        actor=SYSTEM, now=now)
    assert len(again.updates) == sum(1 for i in range(3000) if i % 7 != i % 5)
    assert check() == []


# --- a location column: where new products' opening stock lands ------------------------------

def _levels(sku: str) -> dict[str, int]:
    from dashboard.models import Location, StockLevel
    db.session.expire_all()
    return dict(db.session.execute(
        select(Location.code, StockLevel.on_hand).join(StockLevel.location).join(
            Product, Product.id == StockLevel.product_id).where(Product.sku == sku)).all())


def test_opening_stock_lands_at_the_rows_location(product_factory, now):
    from dashboard.services.locations import create_location
    create_location("STORE-1", "High Street store", kind="store", actor=SYSTEM, now=now)
    product_factory("OLD-1", on_hand=4)
    data = ("SKU,Name,On hand,Location\n"
            "NEW-1,Mug,5,store-1\n"
            "NEW-2,Cup,3,\n"          # blank: the default location
            "OLD-1,Old,9,STORE-1\n").encode()  # an existing product: no stock change
    report = check_products(data)
    assert report.opening_by_location == {"STORE-1": 5, "MAIN": 3} and not report.bad_rows
    import_products(data, actor=SYSTEM, now=now)
    assert _levels("NEW-1") == {"MAIN": 0, "STORE-1": 5}
    assert _levels("NEW-2") == {"MAIN": 3, "STORE-1": 0}
    assert _levels("OLD-1") == {"MAIN": 4, "STORE-1": 0}
    opening = db.session.scalars(select(StockMovement).join(Product).where(Product.sku == "NEW-1")).one()
    assert opening.on_hand_delta == 5 and opening.location_id != _main_id()
    assert check() == []


def _main_id() -> int:
    from dashboard.services.locations import default_location
    return default_location().id


def test_an_unknown_location_is_a_bad_row_and_nothing_is_created(now):
    data = b"SKU,Name,On hand,Location\nNEW-1,Mug,5,NOWHERE\nNEW-2,Cup,1,MAIN\n"
    report = check_products(data)
    assert report.bad_rows == [(2, "NEW-1", "unknown location NOWHERE")]
    with pytest.raises(ImportRejected):
        import_products(data, actor=SYSTEM, now=now)
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0
