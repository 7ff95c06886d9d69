"""Webhook endpoints for storefronts and chat tools: added by an admin, checked against
the host allow-list (WEBHOOK_ALLOWED_HOSTS) when saved and again before every send, and
every delivery signed with the endpoint's secret (docs/webhooks.md).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import WEBHOOK_EVENTS, WebhookEndpoint
from . import events
from .actor import Actor
from .errors import InvalidInput, NotFound
from .transaction import transactional

SIGNATURE_HEADER = "Stockroom-Signature"
EVENT_ID_HEADER = "Stockroom-Event-Id"
EVENT_HEADER = "Stockroom-Event"
MIN_SECRET = 16
MAX_URL = 2000


@dataclass(frozen=True)
class NewEndpoint:
    id: int
    url: str
    secret: str  # shown to the admin once, here; never on a page again


def allowed_hosts() -> tuple[str, ...]:
    return tuple(current_app.config.get("WEBHOOK_ALLOWED_HOSTS") or ())


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


def check_url(url, allowed: tuple[str, ...] | None = None) -> str:
    """The URL if a webhook may be sent there, else InvalidInput saying why."""
    allowed = allowed_hosts() if allowed is None else allowed
    url = url.strip() if isinstance(url, str) else ""
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"enter an http or https address of up to {MAX_URL} characters",
                           field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidInput("that is not a valid address", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("only http:// and https:// addresses can receive webhooks",
                           field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("put credentials in the secret, not in the address", field="url")
    if not parts.hostname:
        raise InvalidInput("the address needs a host name", field="url")
    if not host_allowed(parts.hostname, allowed):
        listed = ", ".join(allowed) if allowed else "no hosts"
        raise InvalidInput(
            f"{parts.hostname} is not in WEBHOOK_ALLOWED_HOSTS (it allows {listed});"
            " ask whoever runs Stockroom to add it", field="url")
    return url


def _events(kinds) -> str:
    kinds = [k for k in (kinds or []) if isinstance(k, str)]
    unknown = sorted(set(kinds) - set(WEBHOOK_EVENTS))
    if unknown or not kinds:
        raise InvalidInput(f"choose events from {', '.join(WEBHOOK_EVENTS)}", field="events")
    return " ".join(k for k in WEBHOOK_EVENTS if k in kinds)


def _secret(value) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        return secrets.token_urlsafe(32)
    if not MIN_SECRET <= len(value) <= 200 or not value.isprintable():
        raise InvalidInput(f"a secret needs {MIN_SECRET} to 200 printable characters;"
                           " leave it empty to have one made", field="secret")
    return value


@transactional
def add_endpoint(url, kinds, secret=None, *, actor: Actor, now: datetime) -> NewEndpoint:
    """Save an endpoint; its secret (the one given, or a new random one) is returned once."""
    url, events_, secret = check_url(url), _events(kinds), _secret(secret)
    endpoint = WebhookEndpoint(url=url, events=events_, secret=secret, is_active=True,
                               created_at=now, created_by_id=actor.staff_id)
    db.session.add(endpoint)
    db.session.flush()
    return NewEndpoint(endpoint.id, url, secret)


@transactional
def set_endpoint_active(endpoint_id: int, active: bool, *, now: datetime) -> str:
    """Pause or resume an endpoint (a paused one gets no new deliveries); returns its URL."""
    endpoint = _endpoint(endpoint_id)
    endpoint.is_active = bool(active)
    return endpoint.url


@transactional
def send_test(endpoint_id: int, *, actor: Actor, now: datetime) -> str:
    """Queue a `test` event for this endpoint; the scheduler sends it like any other."""
    endpoint = _endpoint(endpoint_id)
    check_url(endpoint.url)
    events.webhook_test(endpoint.id, actor.staff_id, now)
    return endpoint.url


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).with_for_update())
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The Stockroom-Signature header: HMAC-SHA256 of "<timestamp>.<body>" with the secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
