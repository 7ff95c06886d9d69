"""Real receivers for notification tests: an HTTP server thread that verifies webhook
signatures the way docs/webhooks.md tells a storefront to, and an SMTP server (aiosmtpd)
that keeps the mails it receives. Both listen on loopback ports of their own."""
from __future__ import annotations

import email
import hashlib
import hmac
import json
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.helpers.servers import free_port

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """docs/webhooks.md's check: t and v1 from the header, HMAC-SHA256 of "t.body", fresh."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    expected = hmac.new(secret.encode(), f"{fields.get('t', '')}.".encode() + body,
                        hashlib.sha256).hexdigest()
    fresh = abs((now or time.time()) - int(fields.get("t", "0"))) <= TOLERANCE_SECONDS
    return fresh and hmac.compare_digest(expected, fields.get("v1", ""))


class WebhookReceiver:
    """Accepts signed POSTs; `status` is what it answers (503: down), `stop()` closes the
    port (connection refused); while `gate` is set to an Event it is slow: each POST waits
    until the test opens the gate (`called` says one is waiting)."""

    def __init__(self, secret: str):
        self.secret = secret
        self.status = 200
        self.gate: threading.Event | None = None
        self.called = threading.Event()
        self.changed = threading.Condition()
        self.received: list[dict] = []  # every accepted POST, duplicates included
        self.rejected: list[str] = []  # why a POST was refused (bad signature, ...)
        self.lock = threading.Lock()
        self.port = free_port()
        self._server = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/stockroom"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.called.set()
                if receiver.gate is not None:
                    receiver.gate.wait(60)
                ok = verify(receiver.secret, self.headers.get("Stockroom-Signature", ""), body)
                with receiver.lock:
                    if not ok:
                        receiver.rejected.append("bad signature")
                        status = 400
                    else:
                        status = receiver.status
                        if status == 200:
                            receiver.received.append({
                                "id": self.headers["Stockroom-Event-Id"],
                                "event": self.headers["Stockroom-Event"],
                                "body": json.loads(body), "path": self.path})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.changed:
                    receiver.changed.notify_all()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        """Whether `count` events arrived within `timeout` seconds (a safety net only)."""
        with self.changed:
            return self.changed.wait_for(lambda: len(self.received) >= count, timeout)

    def ids(self) -> list[str]:
        with self.lock:
            return [r["id"] for r in self.received]

    def events(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(r["event"], r["body"].get("product", {}).get("sku")) for r in self.received]


class _Inbox:
    def __init__(self):
        self.mails: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.mails.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on a loopback port; `mails` holds every message it accepted."""

    def __init__(self):
        self.port = free_port()
        self._inbox = _Inbox()
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    @property
    def mails(self) -> list:
        with self._inbox.lock:
            return list(self._inbox.mails)

    def stop(self) -> None:
        self._controller.stop()
