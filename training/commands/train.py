"""`centric train`: validate and load transactions, fit the recommenders, write the train artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from training.console import console, fail, handle_errors, progress, step

if TYPE_CHECKING:
    import polars as pl


@handle_errors
def train(
    transactions: Annotated[Path, typer.Option("--transactions", help="Transactions file (CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Artifact directory to write (created if missing).")],
    schema: Annotated[
        str, typer.Option("--schema", help="Input layout: standard | online-retail | complete-journey.")
    ] = "standard",
    models: Annotated[
        str,
        typer.Option("--models", help="Comma-separated models to fit and save (the hybrid is always fitted)."),
    ] = "buy_again,als,hybrid,popularity,trending,popular_in_category",
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Recommendations per customer.")] = 20,
    half_life_days: Annotated[
        float, typer.Option("--half-life-days", min=1.0, help="Recency half-life of buy-again, in days.")
    ] = 120.0,
    tune: Annotated[
        bool, typer.Option("--tune/--no-tune", help="Tune the hybrid blend on each customer's last order.")
    ] = True,
    explore: Annotated[
        str,
        typer.Option(
            "--explore", help="The hybrid's source of new items: user_knn | als | item_knn_bm25 | popularity …"
        ),
    ] = "user_knn",
    primary: Annotated[
        str,
        typer.Option(
            "--primary",
            help="The model that writes recommendations.parquet: auto (the better of the two below on each "
            "customer's last order, recorded in train_manifest.json) | hybrid_ltr (learned ranker) | hybrid (tuned "
            "linear blend, fastest).",
        ),
    ] = "auto",
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Write rejected rows here (CSV).")] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where every customer is scored: local | dask (a Dask cluster: local worker processes, or "
            "--scheduler) | shards (none here: run `centric score --shard i/n` per shard, then publish).",
        ),
    ] = "local",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="--engine dask: worker processes of the local Dask cluster.")
    ] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="--engine dask: address of a running Dask scheduler (tcp://host:8786)."),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Catalog file (item_id, name, category, price): categories and prices."),
    ] = None,
    view_weight: Annotated[
        str,
        typer.Option(
            "--view-weight",
            metavar="FLOAT",
            help="What one viewed (customer, item) pair counts next to a purchase, for the collaborative models only "
            "(ALS, kNN, the hybrid's explore part); 0 = off (default). Read from --events-dir.",
        ),
    ] = "0",
    click_weight: Annotated[
        str, typer.Option("--click-weight", metavar="FLOAT", help="As --view-weight, for clicks; 0 = off (default).")
    ] = "0",
    events_dir: Annotated[
        Path | None,
        typer.Option(
            "--events-dir",
            help="Event store with the views and clicks (default CENTRIC_EVENTS_DIR, else <CENTRIC_HOME>/events); "
            "read only when a weight is above 0.",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Batches of customers scored at once in this process (tuning and --engine local); default: the "
            "CPU cores this process may use. The outputs are the same for any number.",
        ),
    ] = None,
) -> None:
    """Fit buy-again, ALS, the hybrid and the fallback lists; write recommendations, similar items and models to OUT."""
    from recsys.models import MODELS, explore_models

    explorers = explore_models()

    chosen = [name.strip() for name in models.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in MODELS]
    if explore not in explorers:
        raise fail(f"--explore: unknown model {explore}; choose from {', '.join(explorers)}")
    if unknown:
        raise fail(f"--models: unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    from recsys.data import load_transactions
    from training.jobs.train import PRIMARY_CHOICES, run_train

    if primary not in PRIMARY_CHOICES:
        raise fail(f"--primary: unknown model {primary}; choose from {', '.join(PRIMARY_CHOICES)}")
    from recsys.models.parallel import available_cores
    from training.jobs.score_engine import ENGINES

    if engine not in ENGINES:
        raise fail(f"--engine: unknown engine {engine}; choose from {', '.join(ENGINES)}")
    from recsys.exceptions import ConfigError
    from recsys.implicit_feedback import FeedbackWeights, check_weight

    checked = {}
    for name, value in (("view_weight", view_weight), ("click_weight", click_weight)):
        try:
            checked[name] = check_weight(name, value)
        except ConfigError as exc:
            raise fail(f"--{name.replace('_', '-')}: {exc}") from None
    weights = FeedbackWeights(view=checked["view_weight"], click=checked["click_weight"])
    with step(f"load + validate {transactions.name}"):
        result = load_transactions(transactions, schema=schema, rejects_path=rejects, catalog=catalog)
    feedback_rows = None
    if weights.enabled:
        feedback_rows = _implicit_rows(events_dir)
    with progress() as bar:
        task = bar.add_task("train", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        summary = run_train(
            result,
            out,
            models=chosen,
            k=k,
            half_life_days=half_life_days,
            tune=tune,
            explore=explore,
            primary=primary,
            on_progress=on_progress,
            engine=engine,
            workers=workers,
            scheduler=scheduler,
            feedback_rows=feedback_rows,
            feedback_weights=weights,
            threads=threads or available_cores(),
        )
    _print_summary(summary, result.report)


def _implicit_rows(events_dir: Path | None) -> pl.DataFrame:
    """The views and clicks of the event store (``--events-dir``, else the settings' one)."""
    from recsys.events.history import implicit_rows
    from recsys.events.store import EventStore
    from recsys.settings import Settings

    folder = events_dir if events_dir is not None else Settings().events_path()
    if not folder.is_dir():
        raise fail(f"--events-dir: {folder} is not a directory; views and clicks come from `centric events sync`")
    with step(f"read views and clicks from {folder}"):
        return implicit_rows(EventStore(folder))


def _print_summary(summary: dict, report: object) -> None:
    table = Table(title=f"centric train → {summary['out_dir']}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows_used = getattr(report, "rows_used", None)
    rows_rejected = getattr(report, "rows_rejected", None)
    if rows_used is not None:
        table.add_row("rows used / rejected", f"{rows_used:,} / {rows_rejected:,}")
    for key, value in summary["counts"].items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    for source, count in sorted(summary["sources"].items()):
        table.add_row(f"recommendations from {source}", f"{count:,}")
    table.add_row("primary model (writes recommendations)", summary["primary_model"])
    choice = summary.get("primary_choice") or {}
    if "validation_ndcg@10" in choice:
        scores = ", ".join(f"{name} {score}" for name, score in choice["validation_ndcg@10"].items())
        table.add_row("chosen on validation (NDCG@10)", scores)
    elif "skipped" in choice:
        table.add_row("chosen on validation", f"no: {choice['skipped']}")
    blend = summary.get("blend_tuning") or {}
    if "repeat_weight" in blend:
        table.add_row(
            "hybrid blend (weight, slope)",
            f"{blend['repeat_weight']}, {blend['repeat_slope']} (validation NDCG@10 {blend['validation_ndcg@10']})",
        )
    elif "skipped" in blend:
        table.add_row("hybrid blend", f"defaults ({blend['skipped']})")
    feedback = summary.get("implicit_feedback") or {}
    if feedback.get("used"):
        added = ", ".join(f"{n:,} {kind} pairs" for kind, n in feedback["pairs_added"].items())
        dropped = feedback["dropped_unknown_customer"] + feedback["dropped_unknown_item"]
        table.add_row(
            "views / clicks (weights)",
            f"{feedback['view_weight']:g} / {feedback['click_weight']:g}: {added} added, {dropped:,} unknown dropped",
        )
    for key, seconds in summary["seconds"].items():
        table.add_row(f"{key.replace('_', ' ')} (s)", f"{seconds:.1f}")
    table.add_row("models saved", ", ".join(summary["models"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``centric train`` to ``app``."""
    app.command("train")(train)
