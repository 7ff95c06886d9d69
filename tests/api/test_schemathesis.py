"""Schemathesis against a live gunicorn on PostgreSQL: no server errors, no schema violations.

Runs every check (`--checks all`) in all four phases (examples, coverage, fuzzing, stateful
via the document's links), with a bounded number of examples so it stays well under three
minutes. Two checks are configured, none excluded:

- negative_data_rejection also counts gunicorn's 414 (a request line over
  gunicorn.conf.py's limit_request_line) as a rejection; GET /products documents it.
- positive_data_acceptance also accepts 422. The API answers 422 for requests that are
  schema-valid but refused on facts the schema cannot express, as SPEC §7 requires:
  `extend_beyond_cap` (the cap depends on when the hold was made), an owner `cart_id` /
  `order_id` that does not exist, an empty cart, and `idempotency_key_reused` (schemathesis
  sends the same generated key with different bodies, which must be refused).
"""
from __future__ import annotations

import subprocess
import textwrap

import pytest

from dashboard import services
from tests.helpers.servers import VENV_BIN, gunicorn
from tests.helpers.records import make_cart, make_order

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_server_errors_or_schema_violations(
        requires_postgres, database_url, product_factory, now, tmp_path):
    # The SKU the document uses as its example, with stock enough for every generated hold.
    tee = product_factory("TEE-BLACK-M", on_hand=1_000_000, threshold=5)
    other = product_factory("MUG-WHITE", on_hand=1_000_000, threshold=5)
    client, token = services.create_api_client("schemathesis", now=now)
    cart_id = make_cart(now, {tee.id: 1, other.id: 2}, storefront=client.id)
    confirm_id = make_order(now, {tee.id: 1}, storefront=client.id)
    cancel_id = make_order(now, {other.id: 1}, storefront=client.id)
    config = tmp_path / "schemathesis.toml"
    config.write_text(textwrap.dedent(f"""
        [checks.positive_data_acceptance]
        expected-statuses = ["2xx", "401", "404", "409", "422"]

        # A query string too long for the request line is refused by gunicorn (414).
        [checks.negative_data_rejection]
        expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415",
                             "422", "428", "429"]

        # Give the cart and order calls real records to work on (ids are otherwise random).
        [[operations]]
        include-operation-id = "reserveCart"
        parameters = {{ "path.cart_id" = {cart_id} }}

        [[operations]]
        include-operation-id = "confirmOrder"
        parameters = {{ "path.order_id" = {confirm_id} }}

        [[operations]]
        include-operation-id = "cancelOrder"
        parameters = {{ "path.order_id" = {cancel_id} }}
    """))

    with gunicorn(database_url, workers=2) as base:
        run = subprocess.run(
            [str(VENV_BIN / "schemathesis"), "--config-file", str(config), "run",
             f"{base}/api/v1/openapi.json", "--checks", "all",
             "--header", f"Authorization: Bearer {token}",
             "--max-examples", "40",
             # One worker: on Python 3.11.7, hypothesis' ast.parse from two threads can raise
             # "SystemError: AST constructor recursion depth mismatch" (a CPython race).
             "--workers", "1",
             "--request-timeout", "20", "--output-truncate", "false"],
            capture_output=True, text=True, timeout=240,
            cwd=tmp_path,  # its cache directory goes there, not into the repository
        )
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]
    assert services.check() == []  # whatever it sent, the invariants still hold
