"""Reads for the notification pages: webhook endpoints and the delivery log."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import NotificationDelivery, NotificationEvent, Product, StaffUser, WebhookEndpoint

LOG_LIMIT = 100


@dataclass(frozen=True)
class LogLine:
    id: int
    recipient: str  # an endpoint's URL or a staff member's email
    what: str  # the event kind and SKU, or "digest <day>"
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


def endpoints() -> list[WebhookEndpoint]:
    found = db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    return list(found)


def delivery_log(channel: str, limit: int = LOG_LIMIT) -> list[LogLine]:
    """The newest deliveries by webhook or by mail (newest first; ix_..._endpoint_id/staff_id)."""
    staff = aliased(StaffUser)
    query = (
        select(NotificationDelivery, NotificationEvent.kind, Product.sku, WebhookEndpoint.url,
               staff.email)
        .outerjoin(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
        .outerjoin(Product, Product.id == NotificationEvent.product_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == NotificationDelivery.endpoint_id)
        .outerjoin(staff, staff.id == NotificationDelivery.staff_id)
        .order_by(NotificationDelivery.id.desc())
        .limit(limit)
    )
    column = (NotificationDelivery.endpoint_id if channel == "webhook"
              else NotificationDelivery.staff_id)
    query = query.where(column.is_not(None))
    lines = []
    for delivery, kind, sku, url, email in db.session.execute(query):
        what = (f"digest {delivery.digest_day}" if delivery.digest_day
                else f"{kind} {sku}" if sku else kind)
        lines.append(LogLine(delivery.id, url or email, what, delivery.status,
                             delivery.attempts, delivery.last_status, delivery.last_error,
                             delivery.created_at, delivery.next_attempt_at,
                             delivery.delivered_at))
    return lines
