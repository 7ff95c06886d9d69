"""Staff submits apply once (issue 9): every state-changing form carries a one-time submit
token, and its view runs as one unit of work with the token's claim.

`submit_token()` (a template global) renders the hidden input: a fresh random token each
time a form is rendered, so an htmx row re-rendered after an answer carries a new one.
`@applies_once` runs the view inside `unit_of_work()`: it claims the token
(services.submissions), lets the view call its service (a savepoint) and render its answer,
stores the answer's status and message with the claim if it succeeded, and commits once.
A refused or failed submit rolls everything back, the claim too: nothing was changed and
the same token may be sent again. A replay of an applied token (double click, browser
resubmit, retry after an error, a second tab) applies nothing and answers "Already applied:"
with the first answer's message. A lost COMMIT is `OutcomeUnknown` (web/errors.py says so).
"""
from __future__ import annotations

import functools
import json
import re
import secrets
from datetime import datetime, timezone

from flask import Flask, current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user
from markupsafe import Markup

from ..services.submissions import Answered, SubmitInProgress, claim_submission, record_answer
from ..services.transaction import OutcomeUnknown, unit_of_work
from .htmx import is_htmx, page, toast
from .navigation import local_path

FIELD = "submit_token"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
RETRY_AFTER_SECONDS = 1


def init_app(app: Flask) -> None:
    app.add_template_global(submit_token)


def submit_token() -> Markup:
    # token_urlsafe's alphabet needs no escaping (rendered per form: 100 times on a list page).
    return Markup(f'<input type="hidden" name="{FIELD}" value="{secrets.token_urlsafe(24)}">')


def applies_once(view):
    """Run a state-changing staff view once per submit token (see the module)."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        if request.method != "POST":  # a GET of the same route shows the form
            return view(*args, **kwargs)
        token = request.form.get(FIELD, "")
        if not _TOKEN.fullmatch(token):
            if current_app.config["SUBMIT_TOKEN_REQUIRED"] or token:
                return _out_of_date()
            return _applied(view, None, args, kwargs)
        return _applied(view, token, args, kwargs)

    run.applies_once = True  # tests/web/test_exactly_once.py finds every view without it
    return run


def _applied(view, token: str | None, args, kwargs):
    staff_id = current_user.id  # loaded before the work: nothing reads it after the commit
    flashed = len(session.get("_flashes", []))
    try:
        with unit_of_work(savepoints=True) as work:
            claim = None
            if token is not None:
                try:
                    claim = claim_submission(token, staff_id, datetime.now(timezone.utc))
                except SubmitInProgress:
                    work.discard()
                    return _in_progress()
                if isinstance(claim, Answered):
                    work.discard()
                    return _replay(claim, staff_id)
            response = view(*args, **kwargs)
            if response.status_code >= 400:
                work.discard()  # refused: the service rolled back; free the token too
                g.rolled_back = True
            elif claim is not None:
                message, level = _said(response, flashed)
                record_answer(claim, response.status_code, message, level,
                              response.headers.get("Location"))
            return response
    except OutcomeUnknown:
        raise  # not rolled back: web/errors.py says it may or may not have been applied
    except Exception:
        g.rolled_back = True  # the error page may say that nothing was changed
        raise


def _said(response, flashed: int) -> tuple[str, str]:
    """The answer's message: its toast (htmx) or what it flashed (a plain post)."""
    try:
        toast_ = json.loads(response.headers.get("HX-Trigger") or "{}").get("toast")
    except ValueError:
        toast_ = None
    if toast_:
        return toast_.get("message", ""), toast_.get("level", "success")
    new = session.get("_flashes", [])[flashed:]
    if new:
        return " ".join(message for _, message in new), new[0][0]
    return "Done.", "success"


def _replay(first: Answered, staff_id: int):
    if first.staff_id != staff_id:
        return _out_of_date()
    message = f"Already applied: {first.message}"
    level = "info" if first.level == "success" else first.level
    if is_htmx():
        response = page("_message.html", message=message)
        response.headers["HX-Reswap"] = "none"  # the page already shows the first answer
        return toast(response, message, level)
    flash(message, level)
    return redirect(first.location or local_path(request.referrer) or url_for("overview.index"))


def _in_progress():
    message = "This submit is still being applied; wait a moment."
    response = page("_message.html", status=409, message=message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["HX-Reswap"] = "none"
    return toast(response, message, "warning")


def _out_of_date():
    message = "This form is out of date. Reload the page and try again."
    if is_htmx():
        response = page("_message.html", status=400, message=message)
        response.headers["HX-Refresh"] = "true"
        flash(message, "warning")
        return response
    return page("error.html", status=400, title="Form expired", message=message)
