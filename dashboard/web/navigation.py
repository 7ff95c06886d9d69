"""Where a request may send the browser next: only to paths on this site."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import request


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (never an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = _split(target)
    if parts is None or parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def local_path(url: str | None) -> str | None:
    """The path and query of `url` when it is on this host (an htmx request's page), else None."""
    parts = _split(url) if url else None
    if parts is None or (parts.netloc and parts.netloc != request.host):
        return None
    path = parts.path or "/"
    return path + ("?" + parts.query if parts.query else "")


def _split(url: str):
    """urlsplit, or None for what it cannot parse (`http://[::1` raises)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None
