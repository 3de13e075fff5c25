"""`centric score --shard i/n`: score one customer range of a trained artifact directory (any job runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from training.console import console, fail, handle_errors, step


@handle_errors
def score(
    artifact_dir: Annotated[Path, typer.Argument(help="Artifact directory written by `centric train`.")],
    shard: Annotated[
        str, typer.Option("--shard", help="Which shard, i/n (0-based: 0/4 .. 3/4), of the customers to score.")
    ],
    transactions: Annotated[
        Path, typer.Option("--transactions", help="The transactions file `centric train` read (for the reasons).")
    ],
    schema: Annotated[
        str, typer.Option("--schema", help="Input layout: standard | online-retail | complete-journey.")
    ] = "standard",
) -> None:
    """Write one shard's recommendations into ARTIFACT_DIR/shards/<i>-of-<n>/; publish once all n have arrived.

    Run `centric train --engine shards` first (it fits the models and writes the item tables), then this command
    for every shard 0/n .. n-1/n on any job runner, then `centric publish ARTIFACT_DIR`.
    """
    from recsys.data import load_transactions
    from training.jobs.score import Shard, score_shard

    try:
        which = Shard.parse(shard)
    except ValueError as exc:
        raise fail(f"--shard: {exc}") from None
    with step(f"load + validate {transactions.name}"):
        result = load_transactions(transactions, schema=schema)
    with step(f"score shard {which.index}/{which.count}"):
        info = score_shard(artifact_dir, which, result.transactions)
    table = Table(title=f"centric score → {artifact_dir}/shards/{which.name}")
    table.add_column("what")
    table.add_column("value", justify="right")
    start, stop = info["customers"]
    table.add_row("customers", f"{start:,} .. {stop:,} of {info['customers_total']:,}")
    table.add_row("recommendations", f"{info['files']['recommendations.parquet']['rows']:,}")
    table.add_row("model", str(info["primary_model"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``centric score`` to ``app``."""
    app.command("score")(score)
