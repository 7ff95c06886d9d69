"""`flask --app wsgi products import FILE [--apply]` and `products export [FILE]`: the
catalogue CSV from the command line (the same import and export as the dashboard)."""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
from flask.cli import AppGroup

from .queries.catalogue import export_rows
from .services import SYSTEM
from .services.catalogue_csv import write
from .services.errors import ImportRejected, StockroomError
from .services.product_import import check_products, import_products

products_cli = AppGroup("products", help="The product catalogue: CSV import and export.")


@products_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--apply", is_flag=True, help="Apply the file (default: dry run).")
def import_command(file, apply: bool):
    """Create and update products from a CSV; a dry run unless --apply."""
    data = file.read()
    try:
        if apply:
            report = import_products(data, actor=SYSTEM, now=datetime.now(timezone.utc))
        else:
            report = check_products(data)
    except ImportRejected as error:
        _print(error.report)
        raise click.ClickException(error.message)
    except StockroomError as error:
        raise click.ClickException(error.message)
    _print(report)
    if report.bad_rows:
        raise click.ClickException(f"{len(report.bad_rows):,} bad rows; fix them before --apply")
    verb = "applied" if report.applied else "would be applied (dry run; add --apply)"
    click.echo(f"{len(report.creates):,} created, {len(report.updates):,} updated,"
               f" {report.unchanged:,} unchanged: {verb}")


def _print(report) -> None:
    click.echo("columns: " + ", ".join(f"{h} -> {f}" for f, h in report.columns.items()))
    for note in report.notes:
        click.echo(f"note: {note}")
    for row, sku, values in report.creates:
        click.echo(f"row {row}: {sku}: create")
    for row, sku, changes in report.updates:
        described = "; ".join(f"{name}: {_shown(old)} -> {_shown(new)}"
                              for name, (old, new) in changes.items())
        click.echo(f"row {row}: {sku}: update {described}")
    for row, sku, note in report.row_notes:
        click.echo(f"row {row}: {sku}: note: {note}")
    for row, sku, message in report.bad_rows:
        click.echo(f"row {row}: {sku or '(no SKU)'}: ERROR {message}", err=True)


def _shown(value) -> str:
    return "(none)" if value is None else str(value)


@products_cli.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8", lazy=True), default="-")
def export_command(file):
    """Write every product with its stock figures as CSV (to FILE, or standard output)."""
    write(export_rows(), file if file is not None else sys.stdout)
