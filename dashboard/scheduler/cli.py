"""CLI: `flask --app wsgi scheduler` (the dedicated process), `jobs run NAME` (SPEC §10),
and the in-process scheduler of `flask run`."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from ..services import jobs
from . import runner


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Run the scheduled jobs until SIGTERM or SIGINT (one such process in production)."""
    runner.serve(current_app._get_current_object())


jobs_cli = AppGroup("jobs", help="Scheduled jobs.")


@jobs_cli.command("run")
@click.argument("name", type=click.Choice(list(jobs.JOBS)))
def jobs_run(name: str):
    """Run one job now, outside the schedule, and print what it did."""
    run = jobs.run_job(name, now=datetime.now(timezone.utc))
    detail = json.loads(run.detail) if run.detail else {}
    detail.pop("manual", None)
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
    click.echo(f"{name} {run.status} in {took:.2f}s (run {run.id})")
    for key, value in detail.items():
        if isinstance(value, list):
            for line in value:
                click.echo(f"  {line}")
        elif isinstance(value, dict):
            click.echo(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            click.echo(f"  {key}: {value}")
    if run.status == "failed":
        click.echo((run.error or "").split("\n")[0], err=True)
        sys.exit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(scheduler_command)
    app.cli.add_command(jobs_cli)
    runner.start_with_flask_run(app)  # `flask run` only; never under gunicorn
