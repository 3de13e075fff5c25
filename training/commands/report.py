"""`centric report`: experiment reports (conversion and revenue per arm, lift, 95 % CI)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from recsys.settings import Settings
from training.console import console, handle_errors, step
from training.redis_session import open_redis

report_app = typer.Typer(help="Reports on experiments and on offer policies.", no_args_is_help=True)


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
    loyalty: Path | None = typer.Option(
        None, "--loyalty", help="Loyalty snapshot (customer_id, tier) for the lift per loyalty tier."
    ),
) -> None:
    """Conversion and revenue per arm with lift vs the control arm and 95 % confidence intervals, then the lift per
    RFM segment, lifecycle stage and loyalty tier."""
    from training.jobs.report import read_event_file, read_events, run_experiment_report

    if metric not in ("purchase", "redeem"):
        raise typer.BadParameter("--metric must be 'purchase' or 'redeem'")
    with step(f"reporting experiment {experiment_id}"):
        if events is not None:
            frame = read_event_file(events)
        else:
            with open_redis() as (client, keys, settings):
                frame = read_events(client, keys, settings.events_path())
        result = run_experiment_report(experiment_id, artifacts, frame, metric=metric, control=control, loyalty=loyalty)
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
    if result["segments"]:
        seg = Table(title=f"lift per segment vs {result['control']} (conversion = {metric})")
        for col in (
            "dimension",
            "segment",
            "arm",
            "customers (arm / control)",
            "conversion",
            "diff (95% CI)",
            "lift (95% CI)",
        ):
            seg.add_column(col, justify="left" if col in ("dimension", "segment", "arm") else "right")
        for row in result["segments"]:
            lift = (
                "-"
                if row["conversion_lift"] is None
                else f"{row['conversion_lift']:+.1%} {_ci(row['conversion_lift_ci'])}"
            )
            seg.add_row(
                row["dimension"],
                row["segment"],
                row["arm"],
                f"{row['customers']:,} / {row['control_customers']:,}",
                f"{row['conversion_rate']:.2%} vs {row['control_rate']:.2%}",
                f"{row['conversion_diff']:+.2%} {_ci(row['conversion_diff_ci'])}",
                lift,
            )
        console.print(seg)


@report_app.command("policy")
@handle_errors
def policy(
    decisions: Path | None = typer.Option(
        None, "--decisions", help="Candidate decisions.parquet (default: ARTIFACTS/decisions.parquet)."
    ),
    artifacts: Path = typer.Option(Path("artifacts"), "--artifacts", help="Artifact directory of the candidate."),
    exploration: str | None = typer.Option(
        None,
        "--exploration",
        help='Candidate exploration per channel, JSON as CENTRIC_EXPLORATION (e.g. \'{"app": "thompson"}\'); '
        "default greedy.",
    ),
    k: int = typer.Option(1, "--k", min=1, max=20, help="Slate size the logs were served with (the offers call's k)."),
    events: Path | None = typer.Option(
        None, "--events", help="Events file or event-store folder (default: the event store under the Centric home)."
    ),
    window_days: int = typer.Option(14, "--window-days", min=1, help="Attribution window after an impression."),
    bootstrap: int = typer.Option(500, "--bootstrap", min=50, help="Bootstrap resamples for the 95 % intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resamples."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON here."),
) -> None:
    """Off-policy value of a candidate policy on the logged impressions: IPS, SNIPS and DR with 95 % bootstrap
    intervals, against the logging policy's observed value (redemptions per shown offer)."""
    import json

    from training.jobs.report_policy import read_logged_events, run_policy_report

    with step("estimating the candidate policy's value"):
        frame = read_logged_events(events, Settings().events_path())
        result = run_policy_report(
            frame,
            decisions or artifacts / "decisions.parquet",
            exploration=exploration,
            k=k,
            window_days=window_days,
            n_boot=bootstrap,
            seed=seed,
        )
    cand = result["candidate"]
    table = Table(
        title=f"policy value per shown offer: {result['slots']:,} logged impressions, {result['contexts']:,} "
        f"customer × channel contexts; candidate {Path(cand['decisions']).name}, exploration {cand['exploration']}"
    )
    for col in ("estimate", "value", "95% CI"):
        table.add_column(col, justify="left" if col == "estimate" else "right")
    obs = result["observed"]
    logging = ", ".join(f"{p} ({n:,})" for p, n in result["logging_policies"].items())
    table.add_row(
        f"logging policy, observed ({logging})", f"{obs['value']:.4f}", f"[{obs['low']:.4f}, {obs['high']:.4f}]"
    )
    names = {"ips": "candidate, IPS", "snips": "candidate, self-normalised IPS", "dr": "candidate, doubly robust"}
    for e in result["estimates"]:
        table.add_row(names[e["name"]], f"{e['value']:.4f}", f"[{e['low']:.4f}, {e['high']:.4f}]")
    console.print(table)
    weight = result["mean_weight"]
    console.print(
        f"overlap: the candidate could show the logged offer in {result['overlap']:.1%} of impressions; mean "
        f"importance weight {weight:.2f}"
        + (
            " — far from 1: the candidate is far from the logging policy, trust the intervals less"
            if abs(weight - 1) > 0.2
            else ""
        )
    )
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2))
        console.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(report_app, name="report")
