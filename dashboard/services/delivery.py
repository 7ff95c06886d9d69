"""Delivering notifications: the scheduler's work, never a web worker's (issue 16).

Each run (`deliver_due`) does four short steps, none inside a stock transaction:
1. fan out: new events become deliveries, one per webhook endpoint that wants the kind
   and one per staff member who wants it by mail now (their categories);
2. digests: at DIGEST_HOUR, one digest delivery per digest subscriber per local day;
3. claim: up to NOTIFY_BATCH due deliveries, `FOR UPDATE SKIP LOCKED`, leased by pushing
   their next attempt past the longest a send can take, so a second scheduler skips them
   now and takes them again only if this one died. Only deliveries with nothing earlier
   for the same recipient leased or backing off are taken, and claims take turns (an
   advisory lock, a few milliseconds), so each recipient gets its events in order however
   many schedulers run;
4. send, outside any transaction, one worker per recipient (a slow or down endpoint holds
   up only its own deliveries, each send bounded by NOTIFY_TIMEOUT), in event order per
   recipient; record each outcome in its own short transaction.

A failed send is retried after NOTIFY_BACKOFF_FIRST, doubling up to NOTIFY_BACKOFF_MAX,
until NOTIFY_RETRY_FOR after the delivery was made; then it is `failed` (the delivery log
shows it). When one send to a recipient fails, the rest of its batch waits with it, so an
endpoint that is down receives its events in order once it is back. A scheduler killed
between a send and its record sends that delivery again after the lease: receivers drop
the duplicate by its Stockroom-Event-Id (docs/webhooks.md).
"""
from __future__ import annotations

import http.client
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, exists, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    NotificationDelivery,
    NotificationEvent,
    Product,
    StaffUser,
    WebhookEndpoint,
    actor_label,
)
from ..queries.digest import digest, product_path
from . import mail, webhooks
from .job_runs import one_line
from .ledger import among
from .subscriptions import Subscription, subscriptions
from .transaction import on_postgresql, transaction

# Events mailed to "immediate" subscribers (out_of_stock / back_in_stock are the same news
# as an alert opening or resolving: a mail each would say it twice).
MAIL_KINDS = ("alert_opened", "alert_escalated", "alert_resolved")
FAN_OUT_BATCH = 500
MAX_WORKERS = 32
USER_AGENT = "Stockroom-Webhooks/1"
CLAIM_LOCK = 0x5EED_0016  # pg_advisory_xact_lock key of delivery claims (issue 16)


@dataclass
class Send:
    """One claimed delivery, with everything its worker needs (no database in workers)."""

    delivery_id: int
    lease: datetime  # its claim: an outcome is recorded only while the lease is ours
    created_at: datetime
    recipient: str  # sends to one recipient go one after another, in order
    url: str | None = None
    secret: str | None = None
    body: bytes = b""
    event_id: str = ""
    kind: str = ""
    mail: EmailMessage | None = None
    refusal: str | None = None  # known at claim time never to be sendable


@dataclass
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False  # no retry can help (a host taken off the allow-list)


@dataclass
class Report:
    fanned_out: int = 0
    digests: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0  # claimed, not tried: an earlier send to the same recipient failed
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


def deliver_due(now: datetime) -> Report:
    """One delivery run of the scheduler (see the module)."""
    report = Report(fanned_out=fan_out(now), digests=enqueue_digests(now))
    sends = claim(now, current_app.config["NOTIFY_BATCH"])
    if not sends:
        return report
    by_recipient: dict[str, list[Send]] = defaultdict(list)
    for send in sends:
        by_recipient[send.recipient].append(send)
    smtp = mail.settings()
    allowed = webhooks.allowed_hosts()
    timeout = current_app.config["NOTIFY_TIMEOUT"]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(by_recipient)),
                            thread_name_prefix="notify") as pool:
        running = [pool.submit(_send_in_order, group, smtp, allowed, timeout)
                   for group in by_recipient.values()]
        for done in as_completed(running):
            retry_at = None
            for send, outcome in done.result():
                retry_at = _record(send, outcome, now, report, wait_until=retry_at)
    return report


# --- 1. fan out -------------------------------------------------------------------------

def fan_out(now: datetime, limit: int = FAN_OUT_BATCH) -> int:
    """Turn new events into deliveries (one short transaction); returns events handled."""
    with transaction():
        found = db.session.execute(
            select(NotificationEvent.id, NotificationEvent.kind, NotificationEvent.endpoint_id,
                   Product.category)
            .outerjoin(Product, Product.id == NotificationEvent.product_id)
            .where(~NotificationEvent.fanned_out)
            .order_by(NotificationEvent.id)
            .limit(limit)
            .with_for_update(of=NotificationEvent, skip_locked=True)
        ).all()
        if not found:
            return 0
        endpoints = db.session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.is_active)
        ).all()
        readers: list[Subscription] = (
            [s for s in subscriptions() if s.mode == "immediate"] if mail.settings() else [])
        rows = []
        for event_id, kind, test_endpoint, category in found:
            if kind == "test":
                rows.append(_delivery(event_id, now, endpoint_id=test_endpoint))
                continue
            rows += [_delivery(event_id, now, endpoint_id=eid)
                     for eid, kinds in endpoints if kind in kinds.split()]
            if kind in MAIL_KINDS:
                rows += [_delivery(event_id, now, staff_id=s.staff_id)
                         for s in readers if s.covers(category)]
        if rows:
            db.session.execute(NotificationDelivery.__table__.insert(), rows)
        db.session.execute(
            update(NotificationEvent)
            .where(among(NotificationEvent.id, [row[0] for row in found]))
            .values(fanned_out=True)
            .execution_options(synchronize_session=False))
        return len(found)


def _delivery(event_id: int | None, now: datetime, **recipient) -> dict:
    return {"event_id": event_id, "endpoint_id": None, "staff_id": None, "digest_day": None,
            "digest": None, "status": "pending", "attempts": 0, "created_at": now,
            "next_attempt_at": now, **recipient}


# --- 2. digests -------------------------------------------------------------------------

def digest_day(now: datetime) -> str | None:
    """The local day whose digest is due at `now` (None before DIGEST_HOUR)."""
    local = now.astimezone(ZoneInfo(current_app.config["DISPLAY_TIMEZONE"]))
    if local.hour < current_app.config["DIGEST_HOUR"]:
        return None
    return local.date().isoformat()


def enqueue_digests(now: datetime) -> int:
    """Make today's digest for each digest subscriber who has none yet (once per day,
    however many schedulers: the unique (staff, day) index decides)."""
    day = digest_day(now) if mail.settings() else None
    if day is None:
        return 0
    with transaction():
        have = set(db.session.scalars(
            select(NotificationDelivery.staff_id).where(NotificationDelivery.digest_day == day)))
        due = [s for s in subscriptions() if s.mode == "digest" and s.staff_id not in have]
        if not due:
            return 0
        made = 0
        insert_fn = pg_insert if on_postgresql() \
            else sqlite_insert
        for sub in due:
            row = _delivery(None, now, staff_id=sub.staff_id, digest_day=day,
                            digest=json.dumps({"day": day, **digest(sub.categories, now)}))
            made += len(db.session.execute(
                insert_fn(NotificationDelivery).values(row).on_conflict_do_nothing(
                    index_elements=["staff_id", "digest_day"],
                    index_where=text("digest_day IS NOT NULL"))
                .returning(NotificationDelivery.id)).all())
        return made


# --- 3. claim ---------------------------------------------------------------------------

def lease_seconds() -> int:
    """Longer than any one send can take (connect, send and reply each within the timeout),
    times a batch's sends to one recipient, which go one after another."""
    config = current_app.config
    return 60 + 3 * config["NOTIFY_TIMEOUT"] * min(config["NOTIFY_BATCH"], 20)


def claim(now: datetime, batch: int) -> list[Send]:
    """Claim and lease up to `batch` due deliveries; locked ones are another scheduler's."""
    lease = now + timedelta(seconds=lease_seconds())
    table, earlier = NotificationDelivery, aliased(NotificationDelivery)
    # Only the head of each recipient's queue: nothing made before it for the same recipient
    # is leased to a scheduler or backing off, so a recipient gets its events in order.
    behind = exists().where(
        earlier.status == "pending", earlier.id < table.id, earlier.next_attempt_at > now,
        or_(and_(table.endpoint_id.is_not(None), earlier.endpoint_id == table.endpoint_id),
            and_(table.staff_id.is_not(None), earlier.staff_id == table.staff_id)))
    with transaction():
        if on_postgresql():
            # Claims take turns (a few milliseconds each) so the next one sees this one's
            # leases; held to the end of this transaction, so safe through a pooler.
            db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
        ids = db.session.scalars(
            select(table.id)
            .where(table.status == "pending", table.next_attempt_at <= now, ~behind)
            .order_by(table.id)  # queue order: a recipient's earlier deliveries first
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        db.session.execute(
            update(NotificationDelivery).where(among(NotificationDelivery.id, ids))
            .values(next_attempt_at=lease).execution_options(synchronize_session=False))
        return [_prepared(row, lease) for row in _claimed(ids)]


def _claimed(ids: list[int]):
    resolver = aliased(StaffUser)
    recipient = aliased(StaffUser)
    return db.session.execute(
        select(NotificationDelivery, NotificationEvent, Product, WebhookEndpoint, recipient,
               resolver.name)
        .outerjoin(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
        .outerjoin(Product, Product.id == NotificationEvent.product_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == NotificationDelivery.endpoint_id)
        .outerjoin(recipient, recipient.id == NotificationDelivery.staff_id)
        .outerjoin(resolver, resolver.id == NotificationEvent.staff_id)
        .where(among(NotificationDelivery.id, ids))
        .order_by(NotificationDelivery.event_id, NotificationDelivery.id)
    ).all()


def _prepared(row, lease: datetime) -> Send:
    delivery, event, product, endpoint, staff, resolver_name = row
    send = Send(delivery.id, lease, delivery.created_at,
                recipient=f"endpoint {endpoint.id}" if endpoint else f"staff {staff.id}")
    if endpoint is not None:
        payload = event_payload(event, product, resolver_name)
        send.url, send.secret, send.kind = endpoint.url, endpoint.secret, event.kind
        send.event_id = payload["id"]
        send.body = json.dumps(payload, separators=(",", ":")).encode()
    elif not staff.is_active:
        send.refusal = f"{staff.email} was deactivated"
    elif delivery.digest_day is not None:
        send.kind = "digest"
        send.mail = _digest_mail(staff, json.loads(delivery.digest))
    else:
        send.kind = event.kind
        send.mail = _alert_mail(staff, event, product, resolver_name)
    return send


def event_payload(event: NotificationEvent, product: Product | None,
                  resolver_name: str | None) -> dict:
    """The JSON body of a webhook (docs/webhooks.md)."""
    payload = {"id": str(event.id), "type": event.kind,
               "created_at": event.created_at.isoformat().replace("+00:00", "Z")}
    if product is None:
        payload["message"] = "A test from Stockroom: this endpoint receives its webhooks."
        return payload
    payload["product"] = {"id": product.id, "sku": product.sku, "name": product.name,
                          "category": product.category}
    payload["available"] = event.available
    if event.alert_id is not None:
        payload["alert"] = {"id": event.alert_id, "level": event.level}
    if event.kind == "alert_resolved":
        payload["resolved_by"] = actor_label(resolver_name, None)
    return payload


_SUBJECTS = {
    ("alert_opened", "OUT_OF_STOCK"): ("Out of stock", "{sku} {name} is out of stock."),
    ("alert_opened", "LOW_STOCK"): ("Low stock", "{sku} {name} is low on stock."),
    ("alert_escalated", "OUT_OF_STOCK"): ("Out of stock",
                                          "{sku} {name} went from low to out of stock."),
    ("alert_resolved", None): ("Recovered", "The alert on {sku} {name} was resolved by {by}."),
}


def _alert_mail(staff: StaffUser, event: NotificationEvent, product: Product,
                resolver_name: str | None) -> EmailMessage:
    level = None if event.kind == "alert_resolved" else event.level
    title, sentence = _SUBJECTS.get((event.kind, level), ("Stock alert", "{sku} {name}"))
    sentence = sentence.format(sku=product.sku, name=product.name,
                               by=actor_label(resolver_name, None))
    return mail.message(
        staff.name, staff.email, f"[Stockroom] {title}: {product.sku} {product.name}"[:200],
        "alert", name=staff.name, sentence=sentence, product=product, available=event.available,
        product_url=mail.link(product_path(product.sku)), alerts_url=mail.link("/alerts"))


def _digest_mail(staff: StaffUser, summary: dict) -> EmailMessage:
    for line in summary["went"] + summary["recovered"]:
        line["url"] = mail.link(line["url"])
    subs = subscriptions(staff.id)
    scope = ("all products" if not subs or subs[0].categories is None
             else "categories " + ", ".join(subs[0].categories))
    return mail.message(
        staff.name, staff.email,
        f"[Stockroom] Daily digest {summary['day']}: {len(summary['went'])} low or out,"
        f" {len(summary['recovered'])} recovered",
        "digest", name=staff.name, scope=scope, stuck_url=mail.link("/holds?filter=stuck"),
        drift_url=mail.link("/jobs/reconcile/drift"), **summary)


# --- 4. send and record -----------------------------------------------------------------

def _send_in_order(group: list[Send], smtp, allowed, timeout: int):
    """Send one recipient's deliveries in order; after a failure the rest wait (None)."""
    results, failed = [], False
    for send in group:
        outcome = None if failed else _send_one(send, smtp, allowed, timeout)
        failed = failed or not outcome.ok
        results.append((send, outcome))
    return results


def _send_one(send: Send, smtp, allowed, timeout: int) -> Outcome:
    if send.refusal is not None:
        return Outcome(False, error=send.refusal, permanent=True)
    try:
        if send.mail is not None:
            if smtp is None:
                return Outcome(False, error="mail is off (SMTP_HOST is not set)", permanent=True)
            mail.send(send.mail, smtp)
            return Outcome(True, status=250)
        return post(send, allowed, timeout)
    except Exception as error:  # the receiver's fault or the network's: retry later
        return Outcome(False, status=getattr(error, "smtp_code", None), error=one_line(error))


def post(send: Send, allowed: tuple[str, ...], timeout: int) -> Outcome:
    """POST a signed webhook; 2xx is delivered. Redirects are not followed (a redirect could
    point past the allow-list), and the reply's body is not read."""
    parts = urlsplit(send.url)
    if not webhooks.host_allowed(parts.hostname or "", allowed):
        return Outcome(False, error=f"{parts.hostname} is no longer in WEBHOOK_ALLOWED_HOSTS",
                       permanent=True)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhooks.EVENT_HEADER: send.kind,
        webhooks.EVENT_ID_HEADER: send.event_id,
        webhooks.SIGNATURE_HEADER: webhooks.signature(send.secret, timestamp, send.body),
    }
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                           body=send.body, headers=headers)
        response = connection.getresponse()
        status, reason = response.status, response.reason
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome(True, status=status)
    return Outcome(False, status=status, error=f"HTTP {status} {reason}"[:300])


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: first, twice that, ... up to the max."""
    config = current_app.config
    first, cap = config["NOTIFY_BACKOFF_FIRST"], config["NOTIFY_BACKOFF_MAX"]
    return timedelta(seconds=min(cap, first * 2 ** min(attempts - 1, 30)))


def _record(send: Send, outcome: Outcome | None, now: datetime, report: Report,
            wait_until: datetime | None = None) -> datetime | None:
    """Write one send's outcome, only if our lease still holds it; returns when it is tried
    next (None: delivered or failed). A send not tried (None) waits until `wait_until`."""
    table = NotificationDelivery
    ours = (table.id == send.delivery_id, table.status == "pending",
            table.next_attempt_at == send.lease)
    retry_at = None
    with transaction():
        if outcome is None:
            retry_at = wait_until or now
            values = {"next_attempt_at": retry_at}
            report.waiting += 1
        elif outcome.ok:
            # last_error stays: the log shows what a delivery got through before it went.
            values = {"status": "delivered", "delivered_at": now}
            report.delivered += 1
        else:
            attempts = db.session.scalar(select(table.attempts).where(*ours))
            if attempts is None:
                return None  # the lease ran out and another scheduler has it
            retry_at = now + backoff(attempts + 1)
            retry_for = timedelta(seconds=current_app.config["NOTIFY_RETRY_FOR"])
            if outcome.permanent or retry_at > send.created_at + retry_for:
                values, retry_at = {"status": "failed"}, None
                report.failed += 1
            else:
                values = {"next_attempt_at": retry_at}
                report.retrying += 1
            report.errors.append(f"{send.recipient}: {outcome.error}")
        if outcome is not None:
            values.update(attempts=table.attempts + 1, last_attempt_at=now,
                          last_status=outcome.status)
            if not outcome.ok:
                values["last_error"] = outcome.error
        db.session.execute(update(table).where(*ours).values(**values)
                           .execution_options(synchronize_session=False))
    return retry_at
