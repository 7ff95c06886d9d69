"""Reading a POST body: JSON only, parsed once, with a canonical form for idempotency hashes."""
from __future__ import annotations

import json
from decimal import Decimal

from flask import request

from .errors import ApiError

MAX_BODY_BYTES = 64 * 1024


def read_json(max_bytes: int = MAX_BODY_BYTES) -> tuple[object, bytes]:
    """The parsed body and its canonical bytes. An empty body means `{}` (e.g. a bare commit).

    400 for malformed JSON, 415 for a body that is not JSON, 413 for a huge one.
    """
    if (request.content_length or 0) > max_bytes:
        raise ApiError(413, "body_too_large", f"the body must be at most {max_bytes} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:  # chunked uploads carry no Content-Length
        raise ApiError(413, "body_too_large", f"the body must be at most {max_bytes} bytes")
    if not raw.strip():
        data = {}
    else:
        mimetype = request.mimetype
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise ApiError(415, "unsupported_media_type",
                           "send the body as JSON with Content-Type: application/json")
        try:
            # Decimals keep 1e400 exact, so it is refused as "too large", not parsed as inf.
            data = json.loads(raw, parse_float=Decimal, parse_constant=_no_constants)
        # ValueError covers bad syntax, bad UTF-8 and numbers too long to parse.
        except (ValueError, RecursionError):
            raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    try:
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str,
                               separators=(",", ":")).encode()
    except UnicodeEncodeError:
        raise ApiError(400, "malformed_json", "the body contains an unpaired surrogate") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    return data, canonical


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")
