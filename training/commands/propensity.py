"""`centric propensity fit`: learn P(accept | customer, offer) from campaign history or logged events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from training.console import console, handle_errors, progress

propensity_app = typer.Typer(help="Offer-acceptance (propensity) models.", no_args_is_help=True)


@propensity_app.command("fit")
@handle_errors
def fit(
    source: str = typer.Option(
        "complete-journey", "--source", help="complete-journey, files (standard schema) or events (the event store)."
    ),
    out: Path = typer.Option(Path("artifacts"), "--out", help="Artifact directory; the model goes to OUT/propensity/."),
    data: Path | None = typer.Option(None, "--data", help="Complete Journey folder (default: the demo package's)."),
    exposures: Path | None = typer.Option(
        None, "--exposures", help="files: customer_id, offer_id, channel, start, end."
    ),
    outcomes: Path | None = typer.Option(
        None, "--outcomes", help="files: redemptions (customer_id, offer_id, timestamp)."
    ),
    offer_items: Path | None = typer.Option(None, "--offer-items", help="files: offer_id, item_id (optional)."),
    offer_kinds: Path | None = typer.Option(None, "--offer-kinds", help="files: offer_id, kind (optional)."),
    events: Path | None = typer.Option(None, "--events", help="events: event store folder or events file."),
    transactions: Path | None = typer.Option(None, "--transactions", help="Purchases before the exposures."),
    schema: str = typer.Option("standard", "--schema", help="Schema of --transactions."),
    offers: Path | None = typer.Option(None, "--offers", help="events: offer catalog (items and kinds of offers)."),
    learner: str = typer.Option("logistic", "--learner", help="logistic (scikit-learn) or gbm (LightGBM)."),
    calibration: str = typer.Option(
        "auto",
        "--calibration",
        help="auto (chosen on inner folds of the training period), platt or isotonic; fitted on a time-later fold.",
    ),
    window_days: int = typer.Option(14, "--window-days", min=1, help="Attribution window after an impression."),
    valid_from: str | None = typer.Option(
        None, "--valid-from", help="YYYY-MM-DD: exposures from this day validate (default: the last 25 %)."
    ),
) -> None:
    """Fit and validate the acceptance model on a time split; save it with its AUC and calibration table."""
    from training.jobs.propensity import load_history, run_propensity_fit

    try:
        cut = dt.datetime.fromisoformat(valid_from) if valid_from else None
    except ValueError:
        raise typer.BadParameter(f"{valid_from!r} is not a date: use YYYY-MM-DD", param_hint="--valid-from") from None
    if cut is not None and cut.tzinfo is None:
        cut = cut.replace(tzinfo=dt.UTC)
    with progress() as bar:
        task = bar.add_task("reading history", total=None)
        history, purchases = load_history(
            source,
            data=data,
            exposures=exposures,
            outcomes=outcomes,
            offer_items=offer_items,
            offer_kinds=offer_kinds,
            events=events,
            transactions=transactions,
            schema=schema,
            offers_catalog=offers,
            items=out / "items.parquet",
        )
        bar.update(task, description="features as of each exposure")

        def moved(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_propensity_fit(
            history,
            purchases,
            out,
            learner=learner,
            calibration=None if calibration == "auto" else calibration,
            window_days=window_days,
            valid_from=cut,
            on_progress=moved,
        )
    split = report["split"]
    table = Table(title=f"propensity model {report['version']} ({learner}) from {report['source']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("train / validation exposures", f"{split['train_exposures']:,} / {split['valid_exposures']:,}")
    table.add_row("validation from", split["valid_from"][:10])
    table.add_row(
        "accept rate train / validation", f"{split['train_accept_rate']:.3f} / {split['valid_accept_rate']:.3f}"
    )
    table.add_row("validation AUC", f"{report['auc']:.3f}")
    chosen = report["selection"]
    table.add_row(
        "training labels censored at the cut / dropped (window mostly unseen)",
        f"{split['train_censored_at_cut']:,} / {split['train_dropped_unobserved']:,}",
    )
    table.add_row(
        f"calibration fold (time-later, {chosen['fold_rule']} labels)",
        f"{split['calibration_exposures']:,} from {split['calibration_from'][:10]}",
    )
    table.add_row(
        f"chosen on the training period ({len(chosen['folds'])} inner fold(s))"
        if chosen["folds"]
        else "settings (no usable inner fold in the training period: defaults)",
        (f"C={chosen['c']}, " if learner == "logistic" else "")
        + f"{chosen['calibration']}, fold share {chosen['calibration_share']}"
        + (f", features {chosen['feature_set']}" if chosen.get("feature_set") else ""),
    )
    table.add_row(
        f"validation ECE ({report['ece_binning']}) / noise floor",
        f"{report['ece']:.4f} / {report['ece_noise_floor']:.4f}",
    )
    table.add_row("validation Brier", f"{report['brier']:.4f}")
    table.add_row("fit time", f"{report['fit_seconds']:.1f} s")
    console.print(table)
    console.print(f"wrote {report['path']}; `centric decide --out {out}` uses the newest model")


def register(app: typer.Typer) -> None:
    """Add ``centric propensity`` to ``app``."""
    app.add_typer(propensity_app, name="propensity")
