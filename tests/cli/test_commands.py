"""The command line (SPEC §10): demo, check, staff, api-client, import-counts."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import (
    ApiClient,
    Location,
    Order,
    Product,
    Reservation,
    StaffUser,
    StockAlert,
    StockLevel,
    Transfer,
)
from dashboard.services import SYSTEM


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_demo_fills_an_empty_database_with_a_shop_worth_looking_at(cli):
    result = cli("demo")
    assert result.exit_code == 0, result.output
    for role in ("admin", "manager", "merchandiser", "support", "viewer"):
        assert role in result.output
    assert "stockroom-demo" in result.output and "sr_" in result.output  # logins, API token
    assert result.output.index("[1/8] opening the shop") < result.output.index("[8/8] working alerts")
    assert 400 <= _count(Product) <= 600
    assert {s for (s,) in db.session.execute(select(Order.status).distinct())} == {
        "pending", "confirmed", "shipped", "cancelled"}
    assert _count(Reservation, Reservation.status == "active") >= 50
    assert _count(StockAlert, StockAlert.status == "open") >= 10
    assert _count(StockAlert, StockAlert.status == "acknowledged") >= 1
    assert _count(StockAlert, StockAlert.status == "resolved") >= 1
    low = select(func.count()).select_from(Product).where(
        Product.on_hand - Product.reserved <= Product.low_stock_threshold)
    assert db.session.scalar(low) >= 20
    # The storefront made every hold: its last call is shown, not "never".
    assert db.session.scalar(select(sa.text("last_used_at")).select_from(sa.text("api_clients"))) is not None
    # Four locations with stock at each, and holds at MAIN and at both stores.
    assert {code for (code,) in db.session.execute(select(Location.code))} == {
        "MAIN", "NORTH", "STORE-1", "STORE-2"}
    stocked = select(Location.code).join(StockLevel).where(StockLevel.on_hand > 0).distinct()
    assert {code for (code,) in db.session.execute(stocked)} == {"MAIN", "NORTH", "STORE-1", "STORE-2"}
    held_at = select(Location.code).join(Reservation, Reservation.location_id == Location.id).where(
        Reservation.status == "active").distinct()
    assert {code for (code,) in db.session.execute(held_at)} == {"MAIN", "STORE-1", "STORE-2"}
    # Transfers from NORTH: one received, one in transit, one a draft.
    assert sorted(db.session.scalars(select(Transfer.status))) == ["draft", "received", "shipped"]
    assert services.check() == []


def test_demo_refuses_a_database_with_data_unless_reset_or_if_empty(cli, product_factory):
    product_factory("KEEP-1")
    db.session.commit()
    refused = cli("demo")
    assert refused.exit_code != 0 and "--reset" in refused.output
    assert _count(Product) == 1
    kept = cli("demo", "--if-empty")
    assert kept.exit_code == 0 and "not loaded" in kept.output and _count(Product) == 1
    replaced = cli("demo", "--reset")
    assert replaced.exit_code == 0, replaced.output
    assert _count(Product, Product.sku == "KEEP-1") == 0 and _count(Product) > 400


def test_check_exits_0_when_clean_and_1_listing_each_violation(cli, product_factory):
    product = product_factory("DRIFT-1", on_hand=5)
    assert cli("check").exit_code == 0
    db.session.execute(sa.text("UPDATE products SET reserved = 2 WHERE id = :id"),
                       {"id": product.id})
    db.session.commit()
    result = cli("check")
    assert result.exit_code == 1
    assert "I2 DRIFT-1" in result.output and "I3 DRIFT-1" in result.output


def test_staff_create_reads_the_password_from_stdin(cli):
    result = cli("staff", "create", "New.Person@Example.com", "--role", "support",
                 "--name", "New Person", input="a-long-password\n")
    assert result.exit_code == 0, result.output
    user = services.verify_password("new.person@example.com", "a-long-password")
    assert user is not None and user.role == "support" and user.name == "New Person"


@pytest.mark.parametrize("args, password, message", [
    (["x@example.com", "--role", "admin"], "short\n", "at least 10"),
    (["not-an-email", "--role", "admin"], "a-long-password\n", "valid email"),
    (["x@example.com", "--role", "wizard"], "a-long-password\n", "wizard"),
])
def test_staff_create_refuses_bad_input_and_creates_nobody(cli, args, password, message):
    result = cli("staff", "create", *args, input=password)
    assert result.exit_code != 0 and message in result.output
    assert _count(StaffUser) == 0


def test_api_client_create_prints_the_token_alone_on_the_last_line_once(cli):
    result = cli("api-client", "create", "Web shop")
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("sr_") and " " not in token
    client = services.client_for_token(token)
    assert client is not None and client.name == "Web shop"
    assert token not in db.session.scalar(select(ApiClient.token_hash))  # only the hash is kept
    again = cli("api-client", "create", "Web shop")
    assert again.exit_code != 0 and "already exists" in again.output


def test_import_counts_dry_run_lists_bad_rows_and_changes_nothing(cli, product_factory, tmp_path):
    product_factory("IMP-1", on_hand=10)
    csv_file = tmp_path / "counts.csv"
    csv_file.write_text("sku,on_hand\nIMP-1,4\nNOPE,3\nIMP-1,abc\n")
    result = cli("import-counts", str(csv_file))
    assert result.exit_code == 1
    assert "line 3: NOPE: ERROR unknown SKU NOPE" in result.output
    assert "line 4" in result.output and "appears again" in result.output
    assert db.session.scalar(select(Product.on_hand).where(Product.sku == "IMP-1")) == 10


def test_import_counts_apply_changes_every_row_in_one_go(cli, product_factory, now, tmp_path):
    product_factory("IMP-1", on_hand=10)
    product_factory("IMP-2", on_hand=10)
    services.reserve("IMP-2", 3, services.Owner(session_key="s"), actor=SYSTEM, now=now)
    csv_file = tmp_path / "deltas.csv"
    csv_file.write_text("sku,delta\nIMP-1,5\nIMP-2,-7\n")
    dry = cli("import-counts", str(csv_file))
    assert dry.exit_code == 0 and "dry run" in dry.output
    applied = cli("import-counts", str(csv_file), "--apply")
    assert applied.exit_code == 0 and "2 products applied" in applied.output
    on_hand = dict(db.session.execute(select(Product.sku, Product.on_hand)).all())
    assert on_hand == {"IMP-1": 15, "IMP-2": 3}
    assert services.check() == []
