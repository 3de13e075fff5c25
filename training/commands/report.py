"""`centric report`: experiment reports (conversion and revenue per arm, lift, 95 % CI)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from training.console import console, handle_errors, step
from training.redis_session import open_redis

report_app = typer.Typer(help="Reports on experiments.", no_args_is_help=True)


def _ci(pair: list[float] | tuple[float, float] | None, pct: bool = True) -> str:
    if not pair:
        return "-"
    return f"[{pair[0]:+.1%}, {pair[1]:+.1%}]" if pct else f"[{pair[0]:+,.2f}, {pair[1]:+,.2f}]"


@report_app.command("experiment")
@handle_errors
def experiment(
    experiment_id: str = typer.Argument(..., help="Experiment id (see experiments.json)."),
    artifacts: Path = typer.Option(
        Path("artifacts"), "--artifacts", help="Artifact directory with experiments.json and profiles.parquet."
    ),
    events: Path | None = typer.Option(
        None, "--events", help="Events file (parquet/csv/jsonl); default: the events stream in Redis."
    ),
    metric: str = typer.Option(
        "purchase", "--metric", help="Conversion: 'purchase' (any purchase) or 'redeem' (an offer redeemed)."
    ),
    control: str | None = typer.Option(None, "--control", help="Control arm (default: the holdout arm)."),
) -> None:
    """Conversion and revenue per arm with lift vs the control arm and 95 % confidence intervals."""
    from training.jobs.report import read_event_file, read_events, run_experiment_report

    if metric not in ("purchase", "redeem"):
        raise typer.BadParameter("--metric must be 'purchase' or 'redeem'")
    with step(f"reporting experiment {experiment_id}"):
        if events is not None:
            frame = read_event_file(events)
        else:
            with open_redis() as (client, keys, settings):
                frame = read_events(client, keys, settings.events_path())
        result = run_experiment_report(experiment_id, artifacts, frame, metric=metric, control=control)
    table = Table(title=f"experiment {experiment_id} (control: {result['control']}, conversion = {metric})")
    for col in ("arm", "customers", "conversion", "lift (95% CI)", "revenue/customer", "diff (95% CI)"):
        table.add_column(col, justify="right" if col != "arm" else "left")
    for arm in result["arms"]:
        lift = (
            "-" if arm["conversion_lift"] is None else f"{arm['conversion_lift']:+.1%} {_ci(arm['conversion_lift_ci'])}"
        )
        diff = (
            "-"
            if arm["revenue_diff"] is None
            else f"{arm['revenue_diff']:+,.2f} {_ci(arm['revenue_diff_ci'], pct=False)}"
        )
        table.add_row(
            arm["arm"],
            f"{arm['customers']:,}",
            f"{arm['conversion_rate']:.2%}",
            lift,
            f"{arm['revenue_per_customer']:,.2f}",
            diff,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(report_app, name="report")
