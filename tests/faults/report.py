"""The fault test's figures as a table, and the list of what failed."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from .answers import BARE, NO_ANSWER, SERVER_ERROR, UNAVAILABLE, Tally
from .checks import FAILURES, Verdicts
from .load import STUCK_AFTER

KIND_COLUMNS = ("requests", "keyed", "retried", "ok", "refused", "unknown", *FAILURES)


def _statuses(tally: Tally, who: str | None = None) -> dict[str, int]:
    out = {"2xx": 0, "3xx": 0, "4xx": 0, "503": 0, "500": 0, "other 5xx": 0, "no answer": 0}
    for (asker, status), n in tally.statuses.items():
        if who is not None and asker != who:
            continue
        if status == "none":
            out["no answer"] += n
        elif status in (500, 503):
            out[str(status)] += n
        elif status > 500:
            out["other 5xx"] += n
        else:
            out[f"{status // 100}xx"] += n
    return out


_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)\b)(?::|$)")


def log_exceptions(paths) -> Counter:
    """The exceptions the app's processes logged, by type (what the 5xx answers were)."""
    found: Counter = Counter()
    for path in paths:
        for line in Path(path).read_text(errors="replace").splitlines():
            match = _EXCEPTION.match(line)
            if match:
                found[f"{Path(path).stem.split('-')[0]}: {match.group(1)}"] += 1
    return found


def figures(*, seconds: float, seed: int, faults_on: bool, tally: Tally, faults: dict,
            backends: int, busy_workers: int, missed: dict, load, replay: dict, verdicts: Verdicts,
            invariants: dict[str, list[int]], logs: Counter, phases: dict,
            scheduler: dict[str, int]) -> list[str]:
    requests = load.requests
    api = [r for r in requests if r.is_api]
    staff = [r for r in requests if not r.is_api]
    attempts = sum(len(r.attempts) for r in requests)
    lines = [
        f"Fault test: {seconds:.0f} s of load, seed {seed}, faults {'on' if faults_on else 'OFF'}",
        "  phases (s)           " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items()),
        f"  requests (logical)   api {len(api)} ({sum(r.key is not None for r in api)} with an"
        f" Idempotency-Key), staff {len(staff)} (+{load.skipped_actions} not sent: page would not"
        f" load; {load.idle_turns} turns with no hold left to release)",
        f"  attempts             {attempts} ({attempts - len(requests)} retries);"
        f" key replays {replay['sent']} in {replay['rounds']} rounds",
        "  faults injected      " + (", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
                                     or "none") + f"; backends terminated {backends};"
                                     f" workers killed while serving {busy_workers}",
    ]
    if missed:
        lines.append("  faults missed        " + ", ".join(f"{k} {v}" for k, v in sorted(missed.items())))
    for who in ("api", "staff"):
        counts = _statuses(tally, who)
        lines.append(f"  answers ({who:<5})      " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(f"  bare gunicorn/non-JSON pages {tally.verdicts['api', BARE] + tally.verdicts['staff', BARE]},"
                 f" 503s {sum(tally.verdicts[w, UNAVAILABLE] for w in ('api', 'staff'))},"
                 f" 500s {sum(tally.verdicts[w, SERVER_ERROR] for w in ('api', 'staff'))},"
                 f" no answer {sum(tally.verdicts[w, NO_ANSWER] for w in ('api', 'staff'))}")
    lines.append(f"  effects checked      {verdicts.checked}")
    for what in FAILURES:
        lines.append(f"  {what:<20} {verdicts.count(what)}")
    lines.append(f"  stuck keys           {replay['stuck']} (of {replay['keys']};"
                 f" {replay['unanswered']} replays got no answer)")
    lines.append("  invariants           " + ", ".join(f"{name} {len(ids)}"
                                                      for name, ids in invariants.items()))
    lines.append("  scheduler            " + ", ".join(f"{k} {v}" for k, v in scheduler.items()))
    lines.append("")
    lines.append("  " + f"{'kind':<14}" + "".join(f"{c:>15}" for c in KIND_COLUMNS))
    for kind, counts in sorted(verdicts.by_kind.items()):
        lines.append("  " + f"{kind:<14}" + "".join(f"{counts[c]:>15}" for c in KIND_COLUMNS))
    if tally.errors:
        lines.append("")
        lines.append("  5xx and bare answers by route:")
        for (where, status, verdict), n in tally.errors.most_common(12):
            lines.append(f"    {n:>5}  {status} {verdict:<12} {where}")
    if logs:
        lines.append("  exceptions in the app's logs:")
        lines += [f"    {n:>5}  {what}" for what, n in logs.most_common(8)]
    for what, examples in verdicts.examples.items():
        lines.append(f"  e.g. {what}:")
        lines += [f"    {example}" for example in examples]
    return lines


def failures(*, tally: Tally, replay: dict, verdicts: Verdicts,
             invariants: dict[str, list[int]]) -> list[str]:
    found = [f"{what}: {verdicts.count(what)}" for what in FAILURES if verdicts.count(what)]
    five_hundreds = sum(n for (_, status, _), n in tally.errors.items())
    if five_hundreds:
        found.append(f"5xx answers other than 503 (or bare pages): {five_hundreds}")
    if replay["stuck"]:
        found.append(f"stuck keys (still 409 idempotency_in_progress {STUCK_AFTER:.0f} s after"
                     f" the first replay that got it): {replay['stuck']}")
    if replay["unanswered"]:
        found.append(f"key replays without an answer after the faults: {replay['unanswered']}")
    found += [f"{name}: products/holds {ids[:10]}" for name, ids in invariants.items() if ids]
    if tally.unexpected:
        found.append("unexpected answers: " + ", ".join(f"{w} {s} x{n}" for (w, s), n in tally.unexpected.items()))
    found += [f"harness: {error}" for error in tally.harness_errors]
    return found
