"""Counting SQL statements, and the ones run after a commit (issue 9: nothing reads the
database after the service commit).

    with statements(db.engine) as seen:
        client.post(...)
    assert seen.commits and seen.after_last_commit == []

`before_cursor_execute` on the engine sees every statement; the engine's `commit` event
marks each real COMMIT (a session's `after_commit` also fires when a savepoint is released,
which is not a commit). Only this thread's statements are counted.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event


@dataclass
class Seen:
    statements: list[str] = field(default_factory=list)
    commits: list[int] = field(default_factory=list)  # how many statements ran before each

    @property
    def after_last_commit(self) -> list[str]:
        return self.statements[self.commits[-1]:] if self.commits else []


@contextmanager
def statements(engine):
    seen, thread = Seen(), threading.get_ident()

    def on_statement(_conn, _cursor, statement, _params, _context, _many):
        if threading.get_ident() == thread:
            seen.statements.append(statement)

    def on_commit(_connection):
        if threading.get_ident() == thread:
            seen.commits.append(len(seen.statements))

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
