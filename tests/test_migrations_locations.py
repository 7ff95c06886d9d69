"""Migration 0009 (locations) on a database the previous revision's `demo` filled.

The demo is run as it was at 0008: the code of the commit before 0009 was added, taken from
git into a folder of its own and run there in a child process (today's demo and services
write location columns the 0008 schema does not have). That code also says what its own
`check` found before the upgrade. Then every product's figures, every hold and every ledger
line are compared across the upgrade, the downgrade, and a downgrade that must be refused.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import io
import tarfile

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from dashboard import create_app, services
from dashboard.extensions import db
from dashboard.services import SYSTEM
from dashboard.services.locations import create_location
from tests.helpers.app import ROOT

pytestmark = pytest.mark.slow  # a child process loads the demo: half a minute on PostgreSQL

PREVIOUS = "0008_notifications"
LOCATIONS = "0009_locations"

# Run in the previous revision's tree: migrate to 0008, load its demo, say what its check
# found; or (argv[3] == "check") only the check.
PREVIOUS_DEMO = """
import json, sys
from datetime import datetime
from flask_migrate import upgrade
from dashboard import create_app, services
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sys.argv[1],
                  "SECRET_KEY": "test-secret"})
with app.app_context():
    if sys.argv[3] == "load":
        upgrade(revision="%s")
        from dashboard.demo import load
        load(now=datetime.fromisoformat(sys.argv[2]))
    print(json.dumps({"file": services.__file__, "check": services.check()}))
""" % PREVIOUS


def _previous_tree(tmp_path) -> str:
    """The dashboard package and migrations of the commit before 0009 was added."""
    added = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%H", "--diff-filter=A", "--",
         f"migrations/versions/{LOCATIONS}.py"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert added, "git history has no commit adding migration 0009"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", f"{added}^", "dashboard",
                              "migrations"], capture_output=True, check=True).stdout
    tree = tmp_path / "previous"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return str(tree)


def _previous(tree: str, url: str, now, what: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": tree}
    env.pop("TEST_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", PREVIOUS_DEMO, url, now.isoformat(), what],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["file"].startswith(tree), answer["file"]  # the old code, not this tree's
    return answer["check"]


def _figures() -> dict:
    """Everything the migration must not change, read by SQL (no model of either revision)."""
    queries = {
        "products": "SELECT sku, on_hand, reserved, on_hand - reserved, last_stock_check"
                    " FROM products ORDER BY id",
        "holds": "SELECT id, product_id, quantity, status, expires_at, ended_at, end_reason,"
                 " cart_id, order_id FROM reservations ORDER BY id",
        "ledger": "SELECT id, product_id, kind, on_hand_delta, reserved_delta, reservation_id,"
                  " order_id, created_at FROM stock_movements ORDER BY id",
        "orders": "SELECT id, status FROM orders ORDER BY id",
        "alerts": "SELECT id, product_id, kind, status FROM stock_alerts ORDER BY id",
    }
    with db.engine.connect() as conn:
        return {name: conn.execute(sa.text(sql)).all() for name, sql in queries.items()}


def _revision() -> str:
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


def test_locations_migration_moves_the_previous_demo_into_main_without_changing_a_figure(
    blank_database, now, tmp_path, capfd
):
    tree = _previous_tree(tmp_path)
    assert _previous(tree, blank_database, now, "load") == []  # its own check, at 0008
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": blank_database,
                      "SECRET_KEY": "test-secret"})
    with app.app_context():
        assert _revision() == PREVIOUS
        before = _figures()
        products, holds, ledger = before["products"], before["holds"], before["ledger"]
        assert len(products) > 400 and {h.status for h in holds} >= {
            "active", "released", "committed"}
        assert {m.kind for m in ledger} >= {"receive", "reserve", "release", "commit"}
        assert before["orders"] and before["alerts"]

        upgrade(revision=LOCATIONS)
        assert _figures() == before
        with db.engine.connect() as conn:
            main = conn.execute(sa.text(
                "SELECT id FROM locations WHERE code = 'MAIN' AND is_default AND is_active"
                " AND sellable")).scalar_one()
            assert conn.execute(sa.text("SELECT count(*) FROM locations")).scalar_one() == 1
            levels = conn.execute(sa.text(
                "SELECT p.sku, l.on_hand, l.reserved, l.on_hand - l.reserved,"
                " l.last_stock_check FROM products p"
                " JOIN stock_levels l ON l.product_id = p.id AND l.location_id = :main"
                " ORDER BY p.id"), {"main": main}).all()
            assert levels == products  # each product's MAIN level is its totals
            assert conn.execute(sa.text("SELECT count(*) FROM stock_levels")
                                ).scalar_one() == len(products)
            for table in ("reservations", "stock_movements"):
                assert conn.execute(sa.text(
                    f"SELECT count(*) FROM {table} WHERE location_id <> :main"),
                    {"main": main}).scalar_one() == 0, f"{table} not all at MAIN"
        assert services.check() == []
        db.session.remove()  # its open transaction would keep the downgrade's DDL waiting

        # 0010: each level gets its product's threshold and is_active, figures unchanged.
        upgrade()
        assert _figures() == before
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM stock_levels l JOIN products p ON p.id = l.product_id"
                " WHERE l.product_threshold = p.low_stock_threshold"
                " AND l.product_is_active = p.is_active")).scalar_one() == len(products)
        assert services.check() == []
        db.session.remove()

        downgrade(revision=PREVIOUS)
        assert _revision() == PREVIOUS
        assert _figures() == before
        assert "locations" not in sa.inspect(db.engine).get_table_names()
        db.engine.dispose()
    assert _previous(tree, blank_database, now, "check") == []  # and the old code agrees

    with app.app_context():
        upgrade()  # today's services write today's schema
        create_location("NORTH", "North store", kind="store", actor=SYSTEM, now=now)
        sku = products[0].sku
        services.adjust(sku, 3, reason="delivery to the store", location="NORTH",
                        actor=SYSTEM, now=now)
        moved = _figures()
        db.session.remove()
        downgrade(revision=LOCATIONS)
        with pytest.raises(SystemExit):  # Flask-Migrate logs the migration's RuntimeError
            downgrade(revision=PREVIOUS)
        assert "cannot go back to one location" in capfd.readouterr().err
        db.session.remove()
        assert _revision() == LOCATIONS
        assert _figures() == moved
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT l.on_hand FROM stock_levels l JOIN locations c ON c.id = l.location_id"
                " JOIN products p ON p.id = l.product_id WHERE c.code = 'NORTH'"
                " AND p.sku = :sku"), {"sku": sku}).scalar_one() == 3
        assert services.check() == []
        db.session.remove()
        db.engine.dispose()
