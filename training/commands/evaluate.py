"""`centric evaluate`: offline quality of every model under one protocol, written to results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recsys.evaluation.protocols import PROTOCOLS
from training.console import console, fail, handle_errors, progress, step

SCHEMAS = ("standard", "online-retail", "complete-journey")
# (key in results.json, short header) of the headline columns; every metric is in results.json.
TABLE_METRICS = (  # kept to 7 short columns so the table fits an 80-column terminal
    ("ndcg@10", "ndcg"),
    ("ndcg_basket@10", "ndcgb"),
    ("recall@10", "rec"),
    ("recall_basket@10", "recb"),
    ("repeat_recall@10", "rep"),
    ("explore_recall@10", "exp"),
    ("fit_seconds", "fit s"),
)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to ``app``."""
    app.command()(evaluate)


@handle_errors
def evaluate(
    transactions: Annotated[Path, typer.Option("--transactions", help="Transactions file (CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write results.json.")] = Path("results.json"),
    schema: Annotated[str, typer.Option("--schema", help=f"Input layout: {', '.join(SCHEMAS)}.")] = "standard",
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol", help="temporal (last --test-days held out) or next-basket (last order per customer)."
        ),
    ] = "temporal",
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names (default: all).")] = "",
    test_days: Annotated[
        float, typer.Option("--test-days", help="Temporal protocol: days held out as test (and as validation).")
    ] = 30.0,
    tune: Annotated[
        bool, typer.Option("--tune", help="Search ALS/BPR/kNN parameters on the validation split first.")
    ] = False,
    time_budget: Annotated[
        float, typer.Option("--time-budget", help="Seconds for the whole hyperparameter search.")
    ] = 300.0,
    max_trials: Annotated[int, typer.Option("--max-trials", help="Most parameter sets tried per model.")] = 20,
) -> None:
    """Split the data, optionally tune on validation, refit on train+validation and score every model on test.

    Writes results.json ({"protocol", "data", "models": {name: {"ndcg@10": …, …}}}) and prints a results table.
    """
    from recsys.data import load_transactions
    from training.jobs.evaluate import run_evaluate

    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"choose one of {', '.join(PROTOCOLS)}", param_hint="--protocol")
    if schema not in SCHEMAS:
        raise typer.BadParameter(f"choose one of {', '.join(SCHEMAS)}", param_hint="--schema")
    names = tuple(m.strip() for m in models.split(",") if m.strip()) or None
    with step(f"loading {transactions}"):
        loaded = load_transactions(transactions, schema=schema)
    with progress() as bar:
        try:
            results = run_evaluate(
                loaded.transactions,
                protocol=protocol,
                models=names,
                test_days=test_days,
                tune=tune,
                time_budget=time_budget,
                max_trials=max_trials,
                catalog=loaded.catalog,
                bar=bar,
            )
        except ValueError as exc:  # unknown model name or bad option value: say it in one line
            raise fail(str(exc)) from None
    results["data"]["rows_used"] = loaded.report.rows_used
    results["data"]["rows_rejected"] = loaded.report.rows_rejected
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    console.print(results_table(results))
    explore = results.get("explore") or {}
    if explore:
        ratios = ", ".join(
            f"{ratio:.2f}× {name}"
            for name, ratio in (
                ("popularity", explore.get("vs_popularity")),
                ("popularity:new", explore.get("vs_popularity_new")),
            )
            if ratio is not None
        )
        console.print(
            f"explore recall@10 (items new to the customer): best {explore['best']} "
            f"{explore['explore_recall@10']:.4f}" + (f" = {ratios}" if ratios else "")
        )
    console.print(f"wrote {out}")


def results_table(results: dict[str, Any]) -> Table:
    """Return a rich table of the headline metrics, one row per model."""
    final = results["data"]["final"]
    table = Table(
        title=f"{results['protocol']} — {final.get('scored_customers', '?')} customers scored, "
        f"{final.get('items', '?')} items"
    )
    table.caption = (
        "@10. ndcg: the usual convention, ideal DCG cut at min(k, |truth|); ndcgb / recb: the next-basket one of "
        "the TIFU-KNN and TAIW code, over the whole test basket, items unseen in training included (results.json "
        "'conventions'); rep / exp: recall of the items bought / never bought before; hit rate and coverage are in "
        "results.json"
    )
    table.add_column("model", no_wrap=True)
    for _, header in TABLE_METRICS:
        table.add_column(header, justify="right")
    for name, metrics in results["models"].items():
        table.add_row(name, *(_fmt(metrics.get(key), key) for key, _ in TABLE_METRICS))
    return table


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if key.endswith("seconds") else f"{value:.3f}"
    return str(value)
