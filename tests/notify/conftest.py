"""Fixtures of the notification tests: a real webhook receiver, a real SMTP server, and
the app configured to use them (loopback allowed through WEBHOOK_ALLOWED_HOSTS only)."""
from __future__ import annotations

import pytest

from dashboard.services import SYSTEM, webhooks
from tests.helpers.receivers import SmtpServer, WebhookReceiver

SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def notify_config(app, monkeypatch):
    """Fast retries, loopback webhooks allowed; mail off until `smtp` turns it on."""
    for key, value in {
        "WEBHOOK_ALLOWED_HOSTS": ("127.0.0.1",), "NOTIFY_BACKOFF_FIRST": 30,
        "NOTIFY_BACKOFF_MAX": 600, "NOTIFY_RETRY_FOR": 3600, "NOTIFY_TIMEOUT": 2,
        "NOTIFY_BATCH": 50, "SMTP_HOST": None, "DASHBOARD_URL": "https://stock.example.test",
        "DIGEST_HOUR": 7, "DISPLAY_TIMEZONE": "UTC",
    }.items():
        monkeypatch.setitem(app.config, key, value)
    return app.config


@pytest.fixture
def receiver(notify_config):
    server = WebhookReceiver(SECRET)
    yield server
    server.stop()


@pytest.fixture
def endpoint(receiver, now):
    """An endpoint for the receiver, subscribed to the stock crossings."""
    return webhooks.add_endpoint(receiver.url, ["out_of_stock", "back_in_stock"], SECRET,
                                 actor=SYSTEM, now=now)


@pytest.fixture
def smtp(notify_config, monkeypatch):
    server = SmtpServer()
    monkeypatch.setitem(notify_config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(notify_config, "SMTP_PORT", server.port)
    monkeypatch.setitem(notify_config, "SMTP_SECURITY", "none")
    monkeypatch.setitem(notify_config, "MAIL_FROM", "stockroom@shop.example.test")
    yield server
    server.stop()
