"""CLI: `scheduler` and `jobs run`. Placeholder: the scheduler helper fills this in."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass
