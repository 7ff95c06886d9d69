"""`products import FILE [--apply]` and `products export [FILE]`."""
from __future__ import annotations

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Product


def test_import_is_a_dry_run_until_apply_and_export_reads_back(cli, tmp_path):
    source = tmp_path / "catalogue.csv"
    source.write_bytes("\ufeffItem;Title;Price;EAN;Qty\nA-1;Mug;9,95;4006381333931;5\n"
                       .encode())
    dry = cli("products", "import", str(source))
    assert dry.exit_code == 0, dry.output
    assert "row 2: A-1: create" in dry.output and "dry run" in dry.output
    assert db.session.scalars(select(Product)).all() == []

    applied = cli("products", "import", str(source), "--apply")
    assert applied.exit_code == 0 and "1 created" in applied.output
    assert db.session.scalar(select(Product.on_hand)) == 5

    exported = tmp_path / "export.csv"
    assert cli("products", "export", str(exported)).exit_code == 0
    text = exported.read_text()
    assert text.splitlines()[1] == "A-1,Mug,9.95,4006381333931,,,5,0,5,10,yes"
    again = cli("products", "import", str(exported))
    assert again.exit_code == 0 and "0 created, 0 updated, 1 unchanged" in again.output


def test_import_with_bad_rows_fails_listing_each_and_changes_nothing(cli, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("sku,name,barcode\nA,Mug,4006381333932\nB,Cup,\n")
    result = cli("products", "import", str(source), "--apply")
    assert result.exit_code == 1
    assert "row 2: A: ERROR barcode 4006381333932 has a wrong check digit" in result.output
    assert "1 of 2 rows are wrong; nothing was changed" in result.output
    assert db.session.scalars(select(Product)).all() == []


def test_a_file_that_is_not_utf8_is_refused_with_the_reason(cli, tmp_path):
    source = tmp_path / "latin1.csv"
    source.write_bytes("sku,name\nA,Caf\u00e9\n".encode("latin-1"))
    result = cli("products", "import", str(source))
    assert result.exit_code == 1 and "not UTF-8" in result.output


def test_the_demo_shop_has_categories_barcodes_and_suppliers(cli):
    from sqlalchemy import func

    from dashboard.services.catalogue_fields import is_gtin

    assert cli("demo").exit_code == 0
    rows = db.session.execute(select(Product.barcode, Product.category, Product.supplier)).all()
    assert all(category and supplier for _, category, supplier in rows)
    barcodes = [code for code, _, _ in rows if code]
    assert len(barcodes) >= 400 and all(is_gtin(code) for code in barcodes)
    assert db.session.scalar(select(func.count(func.distinct(Product.category)))) >= 10
