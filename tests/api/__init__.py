"""Storefront API tests: the test client with a token, and a real gunicorn."""
