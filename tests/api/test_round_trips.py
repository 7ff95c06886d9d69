"""What a storefront call costs in round trips on PostgreSQL (issue 12): a plain reserve,
release or commit of a product well above its threshold is two statements, the token read
and the hold's one statement, each its own transaction (no BEGIN, no COMMIT); with an
Idempotency-Key it is the same two (the statement stores the key and its answer); a keyed call that
needs more shares one transaction with its claim and its stored answer."""
from __future__ import annotations

import pytest

from dashboard.extensions import db
from tests.helpers.statements import ALONE, Sent, sent_statements

pytestmark = pytest.mark.usefixtures("requires_postgres")

TOKEN_READ = Sent("SELECT", alone=True, idle_after=True)


@pytest.fixture
def tee(product_factory, api):
    product_factory("TEE-1", on_hand=100, threshold=2)
    db.session.commit()
    # an authenticated call notes the client's last use (at most once a minute): not below
    assert api.get("/products/TEE-1").status_code == 200
    # The test client's requests share this test's app context and so its session, which
    # the GET left in a transaction; a served request starts with a session of its own.
    db.session.commit()


def reserve(api, key: str | None = None):
    response = api.post("/reservations", {"sku": "TEE-1", "quantity": 1, "session_key": "s-1"},
                        key=key)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_a_plain_reserve_is_the_token_read_and_one_statement(api, tee):
    with sent_statements(db.engine) as sent:
        reserve(api)
    assert sent == [TOKEN_READ, ALONE]


def test_a_plain_release_and_commit_are_the_token_read_and_one_statement(api, tee):
    released, committed = reserve(api), reserve(api)
    with sent_statements(db.engine) as release_sent:
        assert api.post(f"/reservations/{released}/release", {}).status_code == 200
    with sent_statements(db.engine) as commit_sent:
        assert api.post(f"/reservations/{committed}/commit", {}).status_code == 200
    assert release_sent == commit_sent == [TOKEN_READ, ALONE]


def test_with_a_key_a_quiet_reserve_is_still_the_token_read_and_one_statement(api, tee):
    # The key's row and its answer are written by the hold's own statement (holds_pg._GATE).
    with sent_statements(db.engine) as sent:
        reserve(api, key="k-1")
    assert sent == [TOKEN_READ, ALONE]


def test_with_a_key_a_reserve_that_needs_more_shares_the_claims_transaction(
        api, product_factory):
    product_factory("LOW-1", on_hand=10, threshold=9)  # a hold of 1 takes it to its threshold
    db.session.commit()
    with sent_statements(db.engine) as sent:
        response = api.post("/reservations", {"sku": "LOW-1", "quantity": 1,
                                               "session_key": "s-1"}, key="k-1")
    assert response.status_code == 201, response.get_json()
    # The token read (and the client's use noted), then the one-statement try, which took
    # nothing (the product is not quiet); then the claim, the reserve statement, the alert
    # check and the stored answer: one transaction, open until its COMMIT (which the driver
    # sends outside cursor.execute).
    tried = next(i for i, s in enumerate(sent) if s.word == "WITH")
    assert sent[tried].alone
    general = sent[tried + 1:]
    assert [s.alone or s.idle_after for s in general] == [False] * len(general)
    assert general[0].word == "INSERT" and general[1].word == "WITH"
    assert general[-1].word == "UPDATE"
