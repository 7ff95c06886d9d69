"""Plain helpers of the service-layer tests: a storefront owner, staff actors, what the
database holds (snapshots, the ledger, alerts), thread races.

Carts, orders and a product's counters are in tests/helpers/records.py (other layers use
them too).
"""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Product, Reservation, StockAlert, StockMovement
from dashboard.services import Actor, Owner

SESSION = Owner(session_key="sess-1")


def staff_actor(staff_factory, role="support", email=None) -> Actor:
    return Actor.staff(staff_factory(role, email=email))


def snapshot() -> dict:
    """Everything a refused call must leave untouched."""
    state = {
        "products": db.session.execute(
            select(Product.id, Product.on_hand, Product.reserved, Product.low_stock_threshold,
                   Product.is_active, Product.alert_muted).order_by(Product.id)
        ).all(),
        "ledger": db.session.scalar(select(func.count()).select_from(StockMovement)),
        "holds": db.session.execute(
            select(Reservation.id, Reservation.status, Reservation.expires_at)
            .order_by(Reservation.id)
        ).all(),
        "alerts": db.session.execute(
            select(StockAlert.id, StockAlert.kind, StockAlert.status).order_by(StockAlert.id)
        ).all(),
    }
    db.session.commit()
    return state


def ledger(product_id: int | None = None, kind: str | None = None) -> list[StockMovement]:
    query = select(StockMovement).order_by(StockMovement.id)
    if product_id is not None:
        query = query.where(StockMovement.product_id == product_id)
    if kind is not None:
        query = query.where(StockMovement.kind == kind)
    rows = db.session.scalars(query).all()
    return rows


def unresolved_alert(product_id: int) -> StockAlert | None:
    return db.session.scalars(
        select(StockAlert).where(StockAlert.product_id == product_id,
                                 StockAlert.status != "resolved")
        .execution_options(populate_existing=True)
    ).first()


def alerts_of(product_id: int) -> list[StockAlert]:
    return db.session.scalars(
        select(StockAlert).where(StockAlert.product_id == product_id).order_by(StockAlert.id)
        .execution_options(populate_existing=True)
    ).all()


def race(app, n: int, work, timeout: float = 120) -> list:
    """Run work(i) in n threads that start together, each in its own app context.

    Returns each thread's outcome: the return value or the exception it raised.
    """
    # Reading an expired object opens a transaction; on SQLite (BEGIN IMMEDIATE) that would
    # hold the write lock in the caller while the threads wait for it.
    db.session.commit()
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=timeout)
                results[i] = work(i)
            except BaseException as error:  # noqa: BLE001 (collected and asserted on)
                results[i] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results
