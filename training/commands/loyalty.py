"""`centric loyalty backfill | reconcile | expire | liability | export`: the points ledger, offline side."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.clock import as_utc, utcnow
from training.console import console, fail, handle_errors, progress, step
from training.redis_session import open_redis

loyalty_app = typer.Typer(
    help="Loyalty ledger: backfill from history, reconcile, expire, liability, export.", no_args_is_help=True
)


def _program(option: Path | None, settings: Any) -> Path:
    return option or settings.loyalty_program


ProgramOpt = Annotated[Path | None, typer.Option("--program", help="Program TOML (default: CENTRIC_LOYALTY_PROGRAM).")]


@loyalty_app.command()
@handle_errors
def backfill(
    transactions: Annotated[Path, typer.Option("--transactions", help="Transactions file (CSV/Parquet) to replay.")],
    schema: Annotated[str, typer.Option("--schema", help="standard | online-retail | complete-journey")] = "standard",
    program: ProgramOpt = None,
) -> None:
    """Replay historic orders in timestamp order to build balances and tiers (idempotent: reruns add nothing)."""
    from training.jobs.loyalty import run_backfill

    try:
        from recsys.data import load_transactions
    except ImportError:
        raise fail("recsys.data.load_transactions is not available in this installation") from None

    with step(f"loading {transactions}"):
        result = load_transactions(transactions, schema=schema)
    with open_redis() as (client, keys, settings), progress() as bar:
        task = bar.add_task("replaying orders", total=None)
        summary = run_backfill(
            client,
            keys,
            _program(program, settings),
            result,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print_json(json.dumps(summary))


@loyalty_app.command()
@handle_errors
def reconcile() -> None:
    """Prove balance == sum of ledger entries == sum of expiry lots for every customer; exit 1 on any mismatch."""
    from training.jobs.loyalty import reconcile as run

    with open_redis() as (client, keys, _settings), progress() as bar:
        task = bar.add_task("reconciling", total=None)
        out = run(client, keys, on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    for m in out["mismatches"][:20]:
        console.print(
            f"[red]mismatch[/] {m['customer_id']}: balance {m['balance']}, entries {m['entries']}, lots {m['lots']}"
        )
    if out["mismatches"]:
        raise fail(f"{len(out['mismatches'])} of {out['customers']} customers do not reconcile", code=1)
    console.print(f"[green]ok[/]: {out['customers']} customers reconcile (balance == sum of entries == sum of lots)")


@loyalty_app.command()
@handle_errors
def expire(
    program: ProgramOpt = None,
    now: Annotated[datetime | None, typer.Option("--now", help="Expire as of this UTC time (default: now).")] = None,
) -> None:
    """Expire points whose lots reached their expiry date (one `expire` entry per lot) and review tiers (period
    end, with grace)."""
    from training.jobs.loyalty import expire as run

    moment = as_utc(now) if now else utcnow()
    with open_redis() as (client, keys, settings), step("expiring points"):
        out = run(client, keys, _program(program, settings), moment)
    console.print_json(json.dumps(out))


@loyalty_app.command()
@handle_errors
def liability(
    program: ProgramOpt = None,
    now: Annotated[
        datetime | None,
        typer.Option("--now", help="As of this UTC time (default: now); points past expiry then are not outstanding."),
    ] = None,
) -> None:
    """Report outstanding points, their value in currency, debt, and customers per tier."""
    from training.jobs.loyalty import liability as run

    moment = as_utc(now) if now else utcnow()
    with open_redis() as (client, keys, settings), step("summing balances"):
        out = run(client, keys, _program(program, settings), now=moment)
    console.print_json(json.dumps(out))


@loyalty_app.command()
@handle_errors
def export(out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")] = Path("ledger.parquet")) -> None:
    """Export every ledger entry to Parquet for the offline side."""
    from training.jobs.loyalty import export as run

    with open_redis() as (client, keys, _settings), step("exporting the ledger"):
        summary = run(client, keys, out)
    console.print_json(json.dumps(summary))


def register(app: typer.Typer) -> None:
    """Add the `loyalty` command group to ``app``."""
    app.add_typer(loyalty_app, name="loyalty")
