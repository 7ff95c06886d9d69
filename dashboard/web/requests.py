"""What every request's text and ids must be before a view sees them.

- Route ids: `<id32:...>` and `<id64:...>` match only ids an INTEGER or BIGINT column can
  hold (1 to 2^31-1 or 2^63-1); anything larger is simply not found, never a database error.
- SKUs: `<sku:...>` takes the rest of the path, and `url_for` escapes every character of a
  SKU (slashes and dots included), so `X/../../admin` links to that product, not elsewhere.
- Text: NUL (PostgreSQL text cannot hold it) and lone surrogates (no encoding can) are never
  typed by a person; a query, form or path value holding one is refused here with a 400,
  in this one place, rather than failing in whichever query it reaches.
"""
from __future__ import annotations

from urllib.parse import quote

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, PathConverter

from ..services.limits import unsayable

REFUSED = "The request holds a character no one types (NUL or a lone surrogate)."


class Id32(IntegerConverter):
    """A row id of an INTEGER key."""

    def __init__(self, url_map, **kwargs):
        super().__init__(url_map, min=1, max=2**31 - 1, **kwargs)


class Id64(IntegerConverter):
    """A row id of a BIGINT key."""

    def __init__(self, url_map, **kwargs):
        super().__init__(url_map, min=1, max=2**63 - 1, **kwargs)


class Sku(PathConverter):
    """A SKU in a path: the rest of the path, written fully escaped.

    Any character matches, a newline too (a path's `.` would not), so a SKU that is wrong
    reaches the view and is refused by name rather than being a 404 no one documented.
    `batch` is the API's batch call, never a product.
    """

    regex = r"(?!batch$)[^/][\s\S]*?"

    def to_url(self, value) -> str:
        return quote(str(value), safe="")


def init_converters(app: Flask) -> None:
    """Before any blueprint is registered: their rules are compiled with these."""
    app.url_map.converters.update(id32=Id32, id64=Id64, sku=Sku)


def init_app(app: Flask) -> None:
    app.before_request(_refuse_unsayable_text)


def _refuse_unsayable_text():
    if request.path.startswith("/api/"):
        return  # the API checks its own input and answers with its documented codes
    values = [*request.args.keys(), *request.args.values(), request.path]
    if request.view_args:
        values += [v for v in request.view_args.values() if isinstance(v, str)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        values += [*request.form.keys(), *request.form.values()]
    if any(unsayable(value) for value in values):
        abort(400, description=REFUSED)
