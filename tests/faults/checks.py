"""After the faults, with the test's own SQL: the invariants, and each logical request's
effects against what it was told.

A request's *effect* is found by what is unique to it: the holds of its session key or
cart, or the ledger lines carrying its reason (count note). Its *answer* is the replay of
its Idempotency-Key when that was conclusive (the real outcome), else its last attempt.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .answers import CONCLUSIVE, OK, REFUSED, Request

INVARIANTS = {
    "I1 (0 <= reserved <= on_hand)":
        "SELECT id FROM products WHERE NOT (0 <= reserved AND reserved <= on_hand)",
    "I2 (reserved = active holds)":
        "SELECT p.id FROM products p LEFT JOIN (SELECT product_id, sum(quantity) AS q"
        " FROM reservations WHERE status = 'active' GROUP BY product_id) h"
        " ON h.product_id = p.id WHERE p.reserved <> coalesce(h.q, 0)",
    "I3 (counters = ledger sums)":
        "SELECT p.id FROM products p LEFT JOIN (SELECT product_id, sum(on_hand_delta) AS oh,"
        " sum(reserved_delta) AS rs FROM stock_movements GROUP BY product_id) m"
        " ON m.product_id = p.id"
        " WHERE p.on_hand <> coalesce(m.oh, 0) OR p.reserved <> coalesce(m.rs, 0)",
    "I4 (one unresolved alert)":
        "SELECT product_id FROM stock_alerts WHERE status <> 'resolved'"
        " GROUP BY product_id HAVING count(*) > 1",
    "I6 (ended with time, reason)":
        "SELECT id FROM reservations WHERE (status <> 'active' AND (ended_at IS NULL"
        " OR coalesce(end_reason, '') = '')) OR (status = 'active' AND ended_at IS NOT NULL)",
    "I6 (ended once, ledger)":
        "SELECT r.id FROM reservations r LEFT JOIN (SELECT reservation_id, count(*) AS n"
        " FROM stock_movements WHERE kind IN ('release', 'expire', 'commit')"
        " GROUP BY reservation_id) e ON e.reservation_id = r.id"
        " WHERE coalesce(e.n, 0) <> CASE WHEN r.status = 'active' THEN 0 ELSE 1 END",
    "holds reserved once (ledger)":
        "SELECT r.id FROM reservations r LEFT JOIN (SELECT reservation_id, count(*) AS n,"
        " sum(reserved_delta) AS q FROM stock_movements WHERE kind = 'reserve'"
        " GROUP BY reservation_id) m ON m.reservation_id = r.id"
        " WHERE coalesce(m.n, 0) <> 1 OR m.q <> r.quantity",
}
LEDGER_KIND = {"release": "release", "commit": "commit", "adjust": "adjust", "count": "count",
               "staff_release": "release", "bulk_release": "release"}
FAILURES = ("doubled", "partial", "missing", "misreported", "replay_differs")


def invariant_violations(conn) -> dict[str, list[int]]:
    return {name: [row[0] for row in conn.execute(sql)] for name, sql in INVARIANTS.items()}


def scheduler_figures(conn) -> dict[str, int]:
    """What the schedulers got done through the faults (job runs by status, holds expired)."""
    figures = {f"{job} {status}": n for job, status, n in conn.execute(
        "SELECT job, status, count(*) FROM job_runs GROUP BY job, status ORDER BY job, status")}
    figures["holds expired"] = conn.execute(
        "SELECT count(*) FROM stock_movements WHERE kind = 'expire'").fetchone()[0]
    return figures


@dataclass
class Found:
    """What the database holds for one request: holds (ids) or ledger lines (hold ids)."""

    holds: list[int] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    expires_at: datetime | None = None


def _found(conn, requests: list[Request]) -> dict[int, Found]:
    found: dict[int, Found] = defaultdict(Found)
    by_session = {r.owner["session_key"]: r for r in requests if r.kind == "reserve"}
    by_cart = {r.owner["cart"]: r for r in requests if r.kind == "cart"}
    by_reason = {(LEDGER_KIND[r.kind], r.owner["reason"]): r for r in requests
                 if r.kind in LEDGER_KIND}
    extended = {r.owner["hold"] for r in requests if r.kind == "extend"}
    for key, rid in conn.execute("SELECT session_key, id FROM reservations"
                                 " WHERE session_key = ANY(%s)", (list(by_session),)):
        found[id(by_session[key])].holds.append(rid)
    for cart, rid in conn.execute("SELECT cart_id, id FROM reservations WHERE cart_id = ANY(%s)",
                                  (list(by_cart),)):
        found[id(by_cart[cart])].holds.append(rid)
    for kind, reason, rid in conn.execute(
            "SELECT kind, reason, reservation_id FROM stock_movements WHERE reason = ANY(%s)",
            ([reason for _, reason in by_reason],)):
        if (kind, reason) in by_reason:
            found[id(by_reason[kind, reason])].lines.append(rid)
    expiry = dict(conn.execute("SELECT id, expires_at FROM reservations WHERE id = ANY(%s)",
                               (list(extended),)).fetchall())
    for r in requests:
        if r.kind == "extend":
            found[id(r)].expires_at = expiry.get(r.owner["hold"])
    return found


def _effects(r: Request, f: Found) -> tuple[int, bool]:
    """(how many times it took effect, whether only part of it did)."""
    if r.kind == "reserve":
        return len(f.holds), False
    if r.kind == "cart":
        lines = r.owner["lines"]
        return len(f.holds) // lines, len(f.holds) % lines != 0
    if r.kind in ("staff_release", "bulk_release"):
        holds = set(r.owner["holds"])
        per_hold = Counter(f.lines)
        times = max(per_hold.values(), default=0)
        return times, set(per_hold) != holds and bool(per_hold)
    if r.kind == "extend":
        return 0, False  # no row of its own: checked by the expiry it answered
    return len(f.lines), False


def _answer(r: Request):
    if r.replay is not None and r.replay.verdict in CONCLUSIVE:
        return r.replay
    return r.last


def _took_effect_as_answered(r: Request, f: Found) -> bool:
    """A 2xx answer names what was done: the database must hold exactly that."""
    body = _answer(r).body
    if r.kind == "reserve":
        return f.holds == [body["id"]]
    if r.kind == "cart":
        return sorted(f.holds) == sorted(h["id"] for h in body)
    if r.kind == "extend":
        answered = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        return f.expires_at is not None and f.expires_at >= answered - timedelta(seconds=1)
    return _effects(r, f) == (1, False)


@dataclass
class Verdicts:
    checked: int = 0
    by_kind: dict = field(default_factory=lambda: defaultdict(Counter))
    examples: dict = field(default_factory=lambda: defaultdict(list))

    def count(self, what: str) -> int:
        return sum(c[what] for c in self.by_kind.values())

    def flag(self, r: Request, what: str, detail: str) -> None:
        self.by_kind[r.kind][what] += 1
        if len(self.examples[what]) < 4:
            attempts = ", ".join(str(a.status or a.error or a.verdict) for a in r.attempts)
            replay = f"; replay {r.replay.status or r.replay.verdict}" if r.replay else ""
            self.examples[what].append(
                f"{r.kind} by {r.actor}{' (key)' if r.key else ''}{' htmx' if r.htmx else ''}"
                f" {r.path}: {detail}; attempts {attempts}{replay}")


def judge(conn, requests: list[Request]) -> Verdicts:
    verdicts = Verdicts()
    found = _found(conn, requests)
    for r in requests:
        f = found[id(r)]
        kind = verdicts.by_kind[r.kind]
        kind["requests"] += 1
        kind["keyed"] += r.key is not None
        kind["retried"] += r.retried
        answer = _answer(r)
        kind[answer.verdict if answer.verdict in CONCLUSIVE else "unknown"] += 1
        verdicts.checked += 1
        times, partial = _effects(r, f)
        if times > 1:
            verdicts.flag(r, "doubled", f"took effect {times} times ({_shown(r, f)})")
        if partial:
            verdicts.flag(r, "partial", f"only part took effect ({_shown(r, f)})")
        if r.key is not None and r.replay is not None and r.last.verdict in CONCLUSIVE \
                and r.replay.verdict in CONCLUSIVE \
                and (r.replay.status, r.replay.body) != (r.last.status, r.last.body):
            verdicts.flag(r, "replay_differs", f"answered {r.last.status}, replayed {r.replay.status}")
        if answer.verdict == OK and times <= 1 and not partial and not _took_effect_as_answered(r, f):
            verdicts.flag(r, "missing", f"answered {answer.status} but the database has {_shown(r, f)}")
        # A refusal says nothing was done; unless the refusal is one a keyless retry got
        # after its own earlier attempt may have applied (the client cannot tell then).
        knows = r.key is not None or not r.is_api or not r.retried
        if answer.verdict == REFUSED and knows and r.kind != "extend" and times > 0:
            verdicts.flag(r, "misreported", f"answered {answer.status} ({_error(answer)}) but took"
                                            f" effect ({_shown(r, f)})")
    return verdicts


def _shown(r: Request, f: Found) -> str:
    if r.kind in ("reserve", "cart"):
        return f"holds {sorted(f.holds)}"
    if r.kind == "extend":
        return f"expiry {f.expires_at.isoformat() if f.expires_at else None}"
    return f"{len(f.lines)} ledger lines with its reason"


def _error(answer) -> str:
    body = answer.body
    return body.get("error", "?") if isinstance(body, dict) else "refused"
