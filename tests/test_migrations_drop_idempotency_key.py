"""Migration 0002 on a database with holds and their ledger lines, up and back down."""
from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from dashboard import create_app
from dashboard.extensions import db

ROWS = [
    "INSERT INTO products (id, sku, name, price, on_hand, reserved, low_stock_threshold,"
    " is_active, alert_muted, created_at, updated_at)"
    " VALUES (1, 'M-1', 'Mug', 9.95, 5, 2, 1, :yes, :no, :at, :at)",
    "INSERT INTO reservations (id, product_id, quantity, session_key, status, created_at,"
    " expires_at) VALUES (1, 1, 2, 'sess-1', 'active', :at, :at)",
    "INSERT INTO stock_movements (product_id, kind, on_hand_delta, reserved_delta,"
    " on_hand_after, reserved_after, reservation_id, created_at)"
    " VALUES (1, 'reserve', 0, 2, 5, 2, 1, :at)",
]


def _reservation_columns() -> list[str]:
    return [c["name"] for c in sa.inspect(db.engine).get_columns("reservations")]


def test_dropping_the_hold_idempotency_key_keeps_holds_ledger_and_constraints(
        blank_database, now):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": blank_database,
                      "SECRET_KEY": "test-secret"})
    with app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as conn:
            for statement in ROWS:
                conn.execute(sa.text(statement), {"yes": True, "no": False, "at": now})
        checks = sa.inspect(db.engine).get_check_constraints("reservations")

        upgrade(revision="0002")
        assert "idempotency_key" not in _reservation_columns()
        inspector = sa.inspect(db.engine)
        assert "uq_reservations_idempotency_key" not in {
            i["name"] for i in inspector.get_indexes("reservations")}
        assert inspector.get_check_constraints("reservations") == checks
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT r.id, r.quantity, m.reservation_id FROM reservations r"
                " JOIN stock_movements m ON m.reservation_id = r.id")).all() == [(1, 2, 1)]

        downgrade(revision="0001")
        assert "idempotency_key" in _reservation_columns()
        db.engine.dispose()
