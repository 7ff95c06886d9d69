"""Jobs (SPEC §6, §8): each job's recent runs, next run and failures; run now; drift repair."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from .. import services
from ..models import JOB_NAMES
from ..queries.jobs import DriftReport, all_jobs, job_view, latest_drift, scheduler_state
from ..services.errors import InvalidInput
from ..services.jobs import run_job
from ..services.wording import plural
from .access import require
from .forms import ReasonForm
from .htmx import is_htmx, page, toast, trigger
from .once import applies_once

bp = Blueprint("jobs", __name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@bp.get("/jobs")
@login_required
def index():
    now = _now()
    return page("jobs/index.html", "jobs/_jobs.html",
                jobs=all_jobs(now), scheduler=scheduler_state(now), now=now)


@bp.post("/jobs/<name>/run")
@require("run_jobs")
def run(name: str):
    if name not in JOB_NAMES:
        abort(404, description=f"There is no job called {name[:40]!r}.")
    now = _now()
    run = run_job(name, now=now, triggered_by=current_user)
    if run.status == "ok":
        message, level = f"{name.title()} ran: {plural(run.rows_affected, 'row')} affected.", "success"
    elif run.status == "skipped":
        why = json.loads(run.detail or "{}").get("reason", "another run is in progress")
        message, level = f"{name.title()} did not run: {why}", "warning"
    else:
        first_line = (run.error or "unknown error").splitlines()[0][:200]
        message, level = f"{name.title()} failed: {first_line}", "error"
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("jobs.index"))
    if name == "reconcile" and request.form.get("panel") == "drift":
        # "Check for drift now" in the drift panel: the panel, and the reconcile runs out of band.
        return toast(_drift_page(job=job_view(name, now), now=now, oob_job=True), message, level)
    response = page("jobs/index.html", "jobs/_job.html", job=job_view(name, now), now=now)
    if name in ("expire", "alerts"):
        trigger(response, "stock-changed")
        trigger(response, "alerts-changed")
    return toast(response, message, level)


def _drift_page(status: int = 200, **context):
    report = context.pop("report", None) or latest_drift()
    return page("jobs/drift_page.html", "jobs/_drift.html", status=status, report=report,
                repair_form=context.pop("repair_form", None) or ReasonForm(formdata=None),
                **context)


@bp.get("/jobs/reconcile/drift")
@login_required
def drift():
    """What the latest reconcile run found, with the repair form."""
    return _drift_page()


@bp.post("/jobs/reconcile/repair")
@require("run_jobs")
@applies_once
def repair():
    form = ReasonForm()
    if not form.validate():
        response = _drift_page(status=422, repair_form=form)
        return toast(response, "Nothing was repaired: " + form.reason.errors[0], "error")
    now = _now()
    try:
        notes = services.repair(actor=services.Actor.staff(current_user), now=now,
                                reason=form.reason.data)
    except InvalidInput as error:
        form.reason.errors = [error.message]
        return toast(_drift_page(status=422, repair_form=form), error.message, "error")
    # Check again at once (in the repair's transaction), so the panel shows what is left.
    left = services.reconcile()
    checked = DriftReport(None, len(left), [d.describe() for d in left[:50]], checked_at=now)
    message = f"Repair done: {plural(len(notes), 'change')} recorded in the ledger." if notes \
        else "Nothing to repair: counters, holds and the ledger agree."
    if not is_htmx():
        flash(message, "success")
        for note in notes:
            flash(note, "info")
        return redirect(url_for("jobs.index"))
    response = _drift_page(repair_notes=notes, report=checked)
    trigger(response, "stock-changed")
    return toast(response, message, "success")
