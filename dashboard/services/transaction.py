"""The one transaction helper: commit when the work returns, roll back when it raises.

`@transactional` makes a public service call one transaction; `with transaction():` does
the same for a block (a batch of a long job, a claim made before other work starts).
Nothing else in the app calls `commit()` or `rollback()` around its writes.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager

from ..extensions import db


@contextmanager
def transaction():
    """Run the block as one transaction on the app's session."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def transactional(fn):
    """Run a public service call as one transaction."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with transaction():
            return fn(*args, **kwargs)

    return run
