"""Migration 0006 (catalogue fields) on a database with products, holds and ledger lines."""
from __future__ import annotations

import warnings

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from dashboard import create_app
from dashboard.extensions import db
from tests.test_migrations_drop_idempotency_key import ROWS

ROWS_AT_0002 = ROWS  # products, a hold and its ledger line, as 0002 has them


def _products():
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT id, sku, name, price, on_hand, reserved FROM products"
                                    " ORDER BY id")).all()


def test_the_catalogue_migration_keeps_every_row_and_adds_empty_fields(blank_database, now):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": blank_database,
                      "SECRET_KEY": "test-secret"})
    with app.app_context():
        upgrade(revision="0002")
        with db.engine.begin() as conn:
            for statement in ROWS_AT_0002:
                conn.execute(sa.text(statement), {"yes": True, "no": False, "at": now})
        before = _products()

        upgrade(revision="0006")
        assert _products() == before
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT barcode, category, supplier FROM products")
                                ).all() == [(None, None, None)]
            assert conn.execute(sa.text("SELECT count(*) FROM stock_movements")).scalar() == 1
        with warnings.catch_warnings():  # SQLite cannot reflect the expression index
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            indexes = {i["name"]: i for i in sa.inspect(db.engine).get_indexes("products")}
        assert indexes["uq_products_barcode"]["unique"]
        assert "ix_products_category" in indexes and "ix_products_updated_at_id" in indexes
        with db.engine.begin() as conn:  # a barcode is unique where set; none may repeat
            conn.execute(sa.text("UPDATE products SET barcode = '96385074'"))
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO products (sku, name, price, on_hand, reserved,"
                    " low_stock_threshold, is_active, alert_muted, created_at, updated_at,"
                    " barcode) VALUES ('M-2', 'Mug 2', 1, 0, 0, 1, :yes, :no, :at, :at,"
                    " '96385074')"), {"yes": True, "no": False, "at": now})
            raise AssertionError("a second product took the same barcode")
        except sa.exc.IntegrityError:
            pass

        downgrade(revision="0002")
        assert "barcode" not in {c["name"] for c in sa.inspect(db.engine).get_columns("products")}
        assert _products() == before
        db.engine.dispose()
