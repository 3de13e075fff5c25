"""`centric analyze`: customer profiles, CLV (BG/NBD, MBG/NBD or Pareto/NBD, chosen on a holdout, + Gamma-Gamma),
churn, lifecycle and RFM segments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from training.console import console, handle_errors, progress


def _print_summary(summary: dict, out: Path) -> None:
    table = Table(title=f"Customer analytics — {summary['customers']:,} customers as of {summary['as_of']}")
    table.add_column("group")
    table.add_column("name")
    table.add_column("value", justify="right")
    for name, count in summary["segments"].items():
        table.add_row("segment", name, f"{count:,}")
    for stage, count in summary["lifecycle"].items():
        table.add_row("lifecycle", stage, f"{count:,}")
    for name, value in summary["clv"].items():
        table.add_row("CLV", name, f"{value:,.2f}")
    table.add_row("CLV model", "profiles use", summary["clv_model"])
    one_time = summary["one_time_buyers"]
    table.add_row(
        "one-time buyers", "churn risk >= 0.5", f"{one_time['churn_risk_at_least_0_5']:,} of {one_time['customers']:,}"
    )
    if summary.get("holdout"):
        h = summary["holdout"]
        table.add_row("holdout", "period", f"{h['holdout_start']} → {h['holdout_end']}")
        for name, scores in h["models"].items():
            mark = " (chosen)" if name == h["model"] else ""
            mae, total = scores.get("mae_per_customer"), scores.get("aggregate_error_pct")
            # a model that could not be scored on the holdout (it did not fit) has no errors: say so, do not crash
            shown = "no score" if mae is None or total is None else f"MAE {mae:.3f}, total {total:+.1f} %"
            table.add_row("holdout", f"{name}{mark}", shown)
        table.add_row("holdout", "predicted / actual", f"{h['predicted_total']:,.0f} / {h['actual_total']:,.0f}")
    console.print(table)
    console.print(f"wrote profiles.parquet, segment_top_items.parquet, models.json, summary.json, plots/ to {out}")


def register(app: typer.Typer) -> None:
    """Add ``centric analyze`` to ``app``."""

    @app.command()
    @handle_errors
    def analyze(
        transactions: Annotated[Path, typer.Option("--transactions", help="Transactions file (CSV or Parquet).")],
        out: Annotated[Path, typer.Option("--out", help="Artifact directory to write into.")],
        schema: Annotated[
            str, typer.Option(help="Input schema: standard, online-retail or complete-journey.")
        ] = "standard",
        calibration_end: Annotated[
            str | None,
            typer.Option(
                help="Last calibration day YYYY-MM-DD; later purchases form the holdout. Default: the last data day."
            ),
        ] = None,
        time_unit: Annotated[str, typer.Option(help="Time unit of the BTYD models: day or week.")] = "week",
        horizon_days: Annotated[int, typer.Option(help="CLV horizon in days.")] = 365,
        margin: Annotated[float, typer.Option(help="Share of spend kept as margin in CLV (0..1).")] = 0.30,
        annual_discount: Annotated[float, typer.Option(help="Annual discount rate for CLV.")] = 0.10,
        clv_model: Annotated[
            str,
            typer.Option(
                help="Purchase model for P(alive), churn risk and CLV: auto (lowest holdout error), bgnbd, mbgnbd "
                "or pnbd (Pareto/NBD)."
            ),
        ] = "auto",
        holdout_fraction: Annotated[
            float,
            typer.Option(
                help="Without --calibration-end: share of the data's span (the last days) held out to choose the model."
            ),
        ] = 0.5,
        plots: Annotated[bool, typer.Option(help="Write PNG/SVG plots into OUT/plots.")] = True,
    ) -> None:
        """Choose and fit the CLV model and Gamma-Gamma, score RFM segments, churn risk, lifecycle and CLV; write
        profiles, models.json (with the model choice and holdout errors), summary.json and plots."""
        from recsys.data import load_transactions
        from training.jobs.analyze import STEPS, run_analyze

        with progress() as bar:
            task = bar.add_task(f"load {transactions.name}", total=len(STEPS) + 1)
            result = load_transactions(transactions, schema=schema)
            bar.advance(task)

            def on_step(name: str) -> None:
                bar.update(task, description=name)
                bar.advance(task)

            summary = run_analyze(
                result,
                out,
                calibration_end=calibration_end,
                time_unit=time_unit,
                horizon_days=horizon_days,
                margin=margin,
                annual_discount=annual_discount,
                clv_model=clv_model,
                holdout_fraction=holdout_fraction,
                plots=plots,
                on_step=on_step,
            )
            bar.update(task, completed=len(STEPS) + 1, description="done")
        _print_summary(summary, out)
