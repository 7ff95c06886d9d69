"""Command line: `flask --app wsgi ...` (SPEC §10)."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass
