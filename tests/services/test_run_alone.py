"""`transaction.run_alone` sends its statement on the pooled driver connection itself (issue
12): it must still fail the way any other statement does. A refusal by the database is
SQLAlchemy's error and leaves a usable connection behind; a connection lost while the
statement ran is an unknown outcome, and the pool replaces the connection."""
from __future__ import annotations

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import text
from sqlalchemy.exc import DataError

from dashboard.extensions import db
from dashboard.services import transaction
from dashboard.services.transaction import OutcomeUnknown, run_alone

pytestmark = pytest.mark.usefixtures("requires_postgres")

_PID = text("SELECT pg_backend_pid(), current_setting('transaction_isolation')")


def test_a_statement_run_alone_commits_by_itself_and_answers_its_row():
    db.session.commit()
    made = run_alone(text("INSERT INTO locations (code, name, kind, is_active, sellable, is_default,"
                          " priority, created_at) VALUES (:code, 'Alone', 'store', true, true, false,"
                          " 9, now()) RETURNING code"), {"code": "ALONE-1"})
    assert made == ("ALONE-1",)
    # Another connection sees it at once: nothing was left to commit.
    with db.engine.connect() as other:
        assert other.execute(text("SELECT count(*) FROM locations WHERE code = 'ALONE-1'")
                             ).scalar() == 1
    assert run_alone(text("SELECT 1 WHERE false"), {}) is None


def test_a_refused_statement_is_sqlalchemys_error_and_the_connection_stays_usable(
    monkeypatch
):
    db.session.commit()
    used, send = [], transaction.send_alone

    def watched(driver, sql, params):  # the real send; note which connection it went on
        used.append(driver)
        return send(driver, sql, params)

    monkeypatch.setattr(transaction, "send_alone", watched)
    with pytest.raises(DataError, match="division by zero"):
        run_alone(text("SELECT 1 / CAST(:zero AS integer)"), {"zero": 0})
    # Back in the pool open, idle and out of autocommit: its next user gets a real transaction.
    (driver,) = used
    assert not driver.closed and driver.autocommit is False
    assert driver.info.transaction_status == TransactionStatus.IDLE
    assert run_alone(_PID, {}) is not None


@pytest.mark.direct
def test_a_connection_lost_while_the_statement_ran_is_an_unknown_outcome():
    db.session.commit()
    pid, _ = run_alone(_PID, {})
    with pytest.raises(OutcomeUnknown):
        run_alone(text("SELECT pg_terminate_backend(pg_backend_pid())"), {})
    again, _ = run_alone(_PID, {})
    assert again != pid  # the lost connection was discarded, not handed out again
