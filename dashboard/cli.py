"""Command line: `flask --app wsgi ...` (SPEC §10). `db upgrade` comes from Flask-Migrate."""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
from flask import Flask
from flask.cli import AppGroup

from . import services
from .models import ROLES
from .services import SYSTEM
from .services.errors import StockroomError


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _fail(error: StockroomError) -> None:
    raise click.ClickException(error.message)


@click.command("check")
def check_command():
    """Verify invariants I1-I6; exit 1 listing each violation."""
    problems = services.check()
    for problem in problems:
        click.echo(problem)
    if problems:
        sys.exit(1)
    click.echo("ok: I1-I6 hold")


@click.command("demo")
@click.option("--reset", is_flag=True, help="Empty the database first.")
@click.option("--if-empty", is_flag=True, help="Load only into an empty database; never fail.")
def demo_command(reset: bool, if_empty: bool):
    """Fill an empty database with a realistic demo shop and print the demo logins."""
    from .demo import DEMO_PASSWORD, STAFF, STEPS, has_data, load, reset_all

    if reset:
        reset_all()
    if has_data():
        if not if_empty:
            raise click.ClickException(
                "the database already has data; use --reset to replace it with the demo"
            )
        click.echo("Database already has data; demo not loaded.")
    else:
        summary = load(now=_now(), progress=lambda step, what: click.echo(
            f"[{step}/{STEPS}] {what}…"))
        click.echo(summary)
    click.echo("Demo logins (password for all: %s):" % DEMO_PASSWORD)
    for email, role, _name in STAFF:
        click.echo(f"  {role:<13} {email}")


staff_cli = AppGroup("staff", help="Staff accounts.")


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", default=None)
def staff_create(email: str, role: str, name: str | None):
    """Create a staff member; password from the prompt, or stdin when not a terminal."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        user = services.create_staff(email, role=role, password=password, name=name, now=_now())
    except StockroomError as error:
        _fail(error)
    click.echo(f"created {user.email} ({user.role})")


api_client_cli = AppGroup("api-client", help="Storefront API clients.")


@api_client_cli.command("create")
@click.argument("name")
@click.option("--all-storefronts", is_flag=True,
              help="Let it act on every storefront's carts, orders and holds (one integration"
                   " serving several storefronts); by default a client reaches only its own.")
def api_client_create(name: str, all_storefronts: bool):
    """Create an API client and print its token once, alone on the last line."""
    try:
        client, token = services.create_api_client(name, now=_now(),
                                                   all_storefronts=all_storefronts)
    except StockroomError as error:
        _fail(error)
    click.echo(f"created API client {client.name}; store this token now, it is not shown again:")
    click.echo(token)


@click.command("import-counts")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--apply", is_flag=True, help="Apply the changes (default: dry run).")
def import_counts_command(file, apply: bool):
    """Import a CSV (`sku,on_hand` absolute counts or `sku,delta`, optionally with a
    `location` column: the default location when absent); dry run unless --apply."""
    text = file.read()
    try:
        report = services.import_counts(text, actor=SYSTEM, now=_now(), apply=apply)
    except services.errors.ImportRejected as error:
        report = error.report
        _print_import(report)
        raise click.ClickException(error.message)
    except StockroomError as error:
        _fail(error)
    _print_import(report)
    if report.errors:
        raise click.ClickException(f"{len(report.errors)} bad rows; fix them before --apply")
    verb = "applied" if report.applied else "would change (dry run; add --apply)"
    click.echo(f"{len(report.changes)} products {verb}")


def _print_import(report) -> None:
    for row in report.rows:
        if row.error:
            click.echo(f"line {row.line}: {row.sku or '(empty)'}: ERROR {row.error}")
        elif row.delta:
            at = f" at {row.location.upper()}" if row.location else ""
            click.echo(
                f"line {row.line}: {row.sku}{at}: {row.on_hand_before} -> {row.on_hand_after}"
                f" ({row.delta:+d})"
            )


def init_app(app: Flask) -> None:
    from .products_cli import products_cli
    from .scheduler import cli as scheduler_cli

    for command in (check_command, demo_command, staff_cli, api_client_cli,
                    import_counts_command, products_cli):
        app.cli.add_command(command)
    scheduler_cli.init_app(app)
