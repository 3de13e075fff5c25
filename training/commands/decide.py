"""`centric decide`: eligibility, propensity and arbitration → decisions in the artifact directory."""

from __future__ import annotations

from pathlib import Path

import typer

from training.console import console, handle_errors, step


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command()
    @handle_errors
    def decide(
        offers: Path | None = typer.Option(
            None, "--offers", help="Offer catalog (TOML); default: CENTRIC_OFFERS_CATALOG or examples/offers.toml."
        ),
        out: Path = typer.Option(
            Path("artifacts"),
            "--out",
            help="Artifact directory to write decisions.parquet, offers.json, experiments.json into.",
        ),
        profiles: Path | None = typer.Option(
            None, "--profiles", help="profiles.parquet (default: OUT/profiles.parquet)."
        ),
        loyalty: Path | None = typer.Option(
            None,
            "--loyalty",
            help="Optional loyalty snapshot (customer_id, tier, points_balance, points_to_next_tier, complaints).",
        ),
        propensity: Path | None = typer.Option(
            None,
            "--propensity",
            help="Propensity model JSON (default: the newest OUT/propensity/*.json; the documented prior if none).",
        ),
        transactions: Path | None = typer.Option(
            None, "--transactions", help="Purchases the fitted propensity model computes its features from."
        ),
        schema: str = typer.Option("standard", "--schema", help="Schema of --transactions."),
        exposures: Path | None = typer.Option(
            None, "--exposures", help="Past exposures (standard schema) the fitted model's history features count."
        ),
        outcomes: Path | None = typer.Option(
            None, "--outcomes", help="Past redemptions (customer_id, offer_id, timestamp), with --exposures."
        ),
        prior: bool = typer.Option(False, "--prior", help="Use the documented prior even when a model is fitted."),
        objective: str = typer.Option(
            "response",
            "--objective",
            help="response: P(accept) × value − cost; uplift: (P(accept|offer) − P(accept|no offer)) × value − cost, "
            "learned from an experiment's arms.",
        ),
        experiment: str | None = typer.Option(
            None, "--experiment", help="uplift: the experiment with a holdout arm (default: the first such)."
        ),
        events: Path | None = typer.Option(
            None, "--events", help="uplift: events file or event store (default: the event store under the home)."
        ),
        window_days: int = typer.Option(
            14, "--window-days", min=1, help="uplift: a purchase counts within this many days of the first impression."
        ),
    ) -> None:
        """Choose the next best offers for every customer under budgets, caps and experiments."""
        from recsys.settings import Settings
        from training.jobs.decide import run_decide

        offers = offers or Settings().offers_catalog

        purchases = None
        if transactions is not None and not prior:
            from recsys.data import load_transactions
            from recsys.nba.response_features import purchases_frame

            with step("reading transactions"):
                purchases = purchases_frame(load_transactions(transactions, schema=schema).transactions)
        history = None
        if (exposures is None) != (outcomes is None):
            raise typer.BadParameter("give --exposures and --outcomes together", param_hint="--exposures/--outcomes")
        if exposures is not None and outcomes is not None and not prior:
            from recsys.nba.response_history import read_history

            with step("reading the response history"):
                history = read_history(exposures, outcomes)
        logged = None
        if objective == "uplift":
            from training.jobs.report_policy import read_logged_events

            with step("reading the experiment's events"):
                logged = read_logged_events(events, Settings().events_path())
        with step("deciding offers"):
            summary = run_decide(
                out,
                offers,
                profiles_path=profiles,
                loyalty_path=loyalty,
                propensity_path=propensity,
                purchases=purchases,
                history=history,
                use_prior=prior,
                objective=objective,
                events=logged,
                experiment_id=experiment,
                window_days=window_days,
            )
        console.print(
            f"decided {summary['decisions']:,} offers for {summary['customers_with_offers']:,} of "
            f"{summary['customers']:,} customers "
            f"({summary['offers']} offers, objective: {summary['objective']}, propensity: {summary['propensity']}, "
            f"expected value "
            f"{summary['expected_value']:,.2f}, "
            f"arbitration gap {summary['arbitration_gap']:.2%}) → {out}"
        )
        if "warning" in summary:
            console.print(f"[yellow]warning:[/yellow] {summary['warning']}")
        for offer_id, info in summary["per_offer"].items():
            console.print(
                f"  {offer_id}: {info['customers']:,} customers, {info['expected_redemptions']:,.1f} expected "
                f"redemptions"
            )
