"""Plain helpers of the notification tests: the outbox's events and the deliveries."""
from __future__ import annotations

from sqlalchemy import select, update

from dashboard.extensions import db
from dashboard.models import NotificationDelivery, NotificationEvent, Product


def events(end_transaction: bool = True) -> list[tuple[str, int | None]]:
    """(kind, product_id) of every event in the outbox, oldest first."""
    found = db.session.execute(
        select(NotificationEvent.kind, NotificationEvent.product_id)
        .order_by(NotificationEvent.id)).all()
    if end_transaction:
        db.session.commit()
    return [tuple(row) for row in found]


def deliveries() -> list[NotificationDelivery]:
    found = db.session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)).all()
    db.session.commit()
    return found


def in_category(product, category: str) -> None:
    """Test setup: file a product under a category (the catalogue form does this for staff)."""
    db.session.execute(update(Product).where(Product.id == product.id).values(category=category))
    db.session.commit()
