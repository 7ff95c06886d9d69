"""Helpers for the storefront API tests: an authenticated test client (their live gunicorn
is tests/helpers/servers.py's)."""
from __future__ import annotations


class Api:
    """The Flask test client with a bearer token; `post` takes an optional idempotency key."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def headers(self, key: str | None = None, **extra) -> dict:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def get(self, path: str, **kwargs):
        return self.client.get("/api/v1" + path, headers=self.headers(), **kwargs)

    def post(self, path: str, json=None, key: str | None = None, **kwargs):
        headers = self.headers(key, **kwargs.pop("headers", {}))
        return self.client.post("/api/v1" + path, json=json, headers=headers, **kwargs)
