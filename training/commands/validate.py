"""`centric validate`: check a transactions (and catalog) file, write rejected rows, print a summary or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from training.console import console, fail, handle_errors, step


@handle_errors
def validate(
    transactions: Annotated[Path, typer.Option("--transactions", help="Transactions file (CSV, CSV.gz or Parquet).")],
    schema: Annotated[
        str, typer.Option("--schema", help="Input layout: standard | online-retail | complete-journey.")
    ] = "standard",
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Write rejected rows here with row number and reason (.csv or .parquet)."),
    ] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="Also validate this catalog file.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any row is rejected.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")
    ] = False,
    delimiter: Annotated[str, typer.Option("--delimiter", help="CSV field separator.")] = ",",
) -> None:
    """Validate TRANSACTIONS: whole-file problems exit 2 with one line; bad rows are rejected with a reason.

    Exit codes: 0 usable (rows may be rejected), 1 rows rejected with --strict, 2 the file cannot be used.
    """
    from recsys.data import load_transactions

    if len(delimiter) != 1:
        raise fail(f"--delimiter must be one character, got {delimiter!r}")
    if as_json:
        result = load_transactions(
            transactions, schema=schema, rejects_path=rejects, catalog=catalog, delimiter=delimiter
        )
    else:
        with step(f"validate {transactions.name}"):
            result = load_transactions(
                transactions, schema=schema, rejects_path=rejects, catalog=catalog, delimiter=delimiter
            )
    report = result.report
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report, result)
    if strict and (report.rows_rejected or (result.catalog_report and result.catalog_report.rows_rejected)):
        raise typer.Exit(1)


def _print_report(report, result) -> None:
    table = Table(title=f"{report.source} ({report.schema})")
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("read", f"{report.rows_read:,}")
    table.add_row("used", f"{report.rows_used:,}")
    if report.returns:
        table.add_row("  of which returns", f"{report.returns:,}")
    table.add_row("rejected", f"{report.rows_rejected:,}")
    for reason, count in report.to_dict()["reasons"].items():
        table.add_row(f"  {reason}", f"{count:,}")
    tx = result.transactions
    if tx.height:
        table.add_row("customers", f"{tx.get_column('customer_id').n_unique():,}")
        table.add_row("items", f"{tx.get_column('item_id').n_unique():,}")
    console.print(table)
    if result.catalog_report is not None:
        cat = result.catalog_report
        console.print(
            f"catalog {cat.source}: {cat.rows_used:,} used, {cat.rows_rejected:,} rejected {cat.reasons or ''}"
        )
    if report.rejects_path:
        console.print(f"rejected rows written to {report.rejects_path}")
    elif report.rows_rejected:
        console.print("pass --rejects FILE to see each rejected row with its row number and reason")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("validate")(validate)
