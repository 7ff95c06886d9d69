"""How a view answers (SPEC §6): a full page or its partial, an action on one row of a list
(`row_answer`), a refusal shown in place, and messages back to the page via HX-Trigger."""
from __future__ import annotations

import json

from flask import flash, make_response, redirect, render_template, request


def is_htmx() -> bool:
    """An htmx request that wants a fragment (history restores want the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def page(template: str, partial: str | None = None, status: int = 200, **context):
    """Render `partial` for htmx requests, the full `template` otherwise; Vary on HX-Request."""
    name = partial if partial and is_htmx() else template
    response = make_response(render_template(name, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def trigger(response, event: str, detail=None):
    """Add an event to HX-Trigger (merged with any already set)."""
    events = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
    events[event] = detail if detail is not None else True
    response.headers["HX-Trigger"] = json.dumps(events)
    return response


def toast(response, message: str, level: str = "success"):
    """Show a toast on the page: level is success, info, warning or error."""
    return trigger(response, "toast", {"message": message, "level": level})


def row_answer(fragment: str, alone: str, *, back_to: str, message: str, level: str,
               status: int = 200, alone_context: dict | None = None, **context):
    """The answer to an action on one row of a list.

    htmx: the row re-rendered in place (`fragment`) with a toast. A plain form post: back to
    the list (`back_to`) with the message flashed; or, when refused (4xx), the row on a page
    of its own (`alone`, with `alone_context` added) so the message sits beside it.
    """
    if not is_htmx():
        if status < 400:
            flash(message, level)
            return redirect(back_to)
        return page(alone, status=status, **{**context, **(alone_context or {})})
    return toast(page(fragment, status=status, **context), message, level)


def refused(error, status: int | None = None) -> tuple[str, int]:
    """The sentence and status of a refusal: `error` is a StockroomError (its message, and
    its http_status when that is 409 or 422, else 422) or a plain sentence."""
    message = getattr(error, "message", None) or str(error)
    if status is None:
        status = getattr(error, "http_status", 422)
        status = status if status in (409, 422) else 422
    return message, status


def refusal(template: str, error, status: int | None = None, **context):
    """A refusal shown in place: `template` re-rendered with `error` (the sentence), a 409/422
    status that base.html's htmx-config swaps, and an error toast."""
    message, status = refused(error, status)
    return toast(page(template, status=status, error=message, **context), message, "error")
