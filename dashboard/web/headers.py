"""Security headers on every response: a strict CSP, no framing or sniffing, no caching
of signed-in pages, and HSTS when served over HTTPS."""
from __future__ import annotations

from flask import Flask, g, request, session

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
    " script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self';"
    " form-action 'self'"
)


def init_app(app: Flask) -> None:
    app.after_request(_security_headers)


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:  # behind a TLS proxy, ProxyFix makes this true
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    # Only what this request already knows (the user on g, the session): loading the user
    # here would query the database after the answer is made, and fail in an outage.
    user = g.get("_login_user")
    if session.get("_user_id") or getattr(user, "is_authenticated", False):
        headers.setdefault("Cache-Control", "no-store")
    return response
