"""`centric campaign`: audiences for campaigns, consistent with the per-customer decisions."""

from __future__ import annotations

from pathlib import Path

import typer

from training.console import console, handle_errors, step

campaign_app = typer.Typer(help="Campaign audiences (the other direction of next-best-action).", no_args_is_help=True)


@campaign_app.command("select")
@handle_errors
def select(
    offer: str = typer.Option(..., "--offer", help="Offer id from the catalog."),
    budget: float = typer.Option(..., "--budget", min=0, help="Redemptions the campaign can pay for (expected)."),
    out: Path = typer.Option(
        Path("audience.csv"), "--out", help="CSV to write (customer_id, expected_value, p_accept)."
    ),
    artifacts: Path = typer.Option(
        Path("artifacts"), "--artifacts", help="Directory holding decisions.parquet and offers.json."
    ),
    channel: str | None = typer.Option(None, "--channel", help="Only customers reachable on this channel."),
) -> None:
    """Pick the best customers for a campaign within a budget, as assigned by the arbitration."""
    from training.jobs.campaign import run_select

    with step(f"selecting audience for {offer}"):
        summary = run_select(artifacts, offer, budget, out, channel=channel)
    console.print(
        f"{summary['customers']:,} customers for {offer}: {summary['expected_redemptions']:,.1f} expected redemptions, "
        f"expected value {summary['expected_value']:,.2f} → {summary['out']}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(campaign_app, name="campaign")
