"""Fixtures of the deploy tests: a throwaway PgBouncer in front of the test database's server."""
from __future__ import annotations

import pytest

from tests.helpers import pgbouncer


@pytest.fixture
def bouncer(requires_postgres):
    """`bouncer(pool_size=..., upstream=...)`: a running PgBouncer in transaction mode, as a
    context manager yielding its base URL."""
    if not pgbouncer.available():
        pytest.skip("needs /usr/sbin/pgbouncer (apt-get install pgbouncer)")
    return pgbouncer.running
