"""Decide and `propensity fit` as users see them: history features at decision time, what the fit says it chose."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
from typer.testing import CliRunner

from recsys.clock import frozen
from tests.unit.nba.test_offers_learning_loop import CATALOG, NOW, _logged_events
from training.jobs.decide import run_decide
from training.jobs.propensity import load_history, run_propensity_fit


def _write_catalog_profiles_and_events(folder: Path) -> None:
    """The offer catalog, 300 active customers' profiles and their logged events (seed 11) under ``folder``."""
    customers = [f"c{i}" for i in range(300)]
    (folder / "offers.toml").write_text(CATALOG)
    pl.DataFrame(
        {"customer_id": customers, "lifecycle": ["active"] * 300, "clv": [100.0] * 300, "p_alive": [0.8] * 300}
    ).write_parquet(folder / "profiles.parquet")
    _logged_events(customers, np.random.default_rng(11)).write_parquet(folder / "events.parquet")


def test_decide_without_the_response_history_warns_that_history_features_are_zero(tmp_path: Path) -> None:
    _write_catalog_profiles_and_events(tmp_path)
    with frozen(NOW):
        history, purchases = load_history(
            "events", events=tmp_path / "events.parquet", offers_catalog=tmp_path / "offers.toml"
        )
        run_propensity_fit(history, purchases, tmp_path)
        with_history = run_decide(tmp_path, tmp_path / "offers.toml", purchases=purchases, history=history)
        p_with = pl.read_parquet(tmp_path / "decisions.parquet").sort("customer_id").get_column("p_accept")
        without = run_decide(tmp_path, tmp_path / "offers.toml", purchases=purchases)
        p_without = pl.read_parquet(tmp_path / "decisions.parquet").sort("customer_id").get_column("p_accept")
    assert "warning" not in with_history
    assert "past_redemptions, past_exposures are 0 for every customer" in without["warning"]
    assert "--exposures, --outcomes" in without["warning"]
    # the skew the warning is about: the same customers, scored on zeros instead of their counts
    assert np.abs(p_with.to_numpy() - p_without.to_numpy()).max() > 0.01


def test_decide_cli_needs_exposures_and_outcomes_together(tmp_path: Path) -> None:
    from training.cli import app

    (tmp_path / "x.csv").write_text("customer_id,offer_id,start\n")
    out = CliRunner().invoke(app, ["decide", "--out", str(tmp_path), "--exposures", str(tmp_path / "x.csv")])
    text = " ".join(out.output.replace("│", " ").split())  # rich wraps the message in a box
    assert out.exit_code == 2 and "give --exposures and --outcomes together" in text, out.output


def test_decide_cli_reads_the_response_history_and_scores_as_run_decide_does(tmp_path: Path) -> None:
    from recsys.nba.event_history import event_purchases, read_events
    from training.cli import app

    _write_catalog_profiles_and_events(tmp_path)
    lines = event_purchases(read_events(tmp_path / "events.parquet"))
    lines.with_columns(pl.lit(1.0).alias("quantity"), pl.col("amount").alias("price")).drop("amount").write_parquet(
        tmp_path / "tx.parquet"
    )
    with frozen(NOW):
        history, purchases = load_history(
            "events", events=tmp_path / "events.parquet", offers_catalog=tmp_path / "offers.toml"
        )
        run_propensity_fit(history, purchases, tmp_path)
        history.exposures.write_parquet(tmp_path / "exposures.parquet")
        history.outcomes.write_parquet(tmp_path / "outcomes.parquet")
        run_decide(tmp_path, tmp_path / "offers.toml", purchases=purchases, history=history)
        expected = pl.read_parquet(tmp_path / "decisions.parquet").sort("customer_id").get_column("p_accept")
        args = ["decide", "--out", str(tmp_path), "--offers", str(tmp_path / "offers.toml")]
        args += ["--transactions", str(tmp_path / "tx.parquet")]
        bare = CliRunner().invoke(app, args)
        args += ["--exposures", str(tmp_path / "exposures.parquet"), "--outcomes", str(tmp_path / "outcomes.parquet")]
        full = CliRunner().invoke(app, args)
    assert bare.exit_code == 0 and "warning:" in bare.output, bare.output
    assert full.exit_code == 0 and "warning" not in full.output, full.output
    got = pl.read_parquet(tmp_path / "decisions.parquet").sort("customer_id").get_column("p_accept")
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy())


def test_propensity_fit_cli_says_defaults_when_the_training_period_has_no_inner_fold(tmp_path: Path) -> None:
    """35 days of impressions with a 14-day window: the validation cut falls among the windows closed by the end
    of the data, training keeps a few final labels for the calibration, and no inner fold has any, so nothing was
    chosen."""
    import json

    from training.cli import app

    customers = [f"c{i}" for i in range(300)]
    (tmp_path / "offers.toml").write_text(CATALOG)
    events = _logged_events(customers, np.random.default_rng(11))
    recent = events.filter((pl.col("type") == "purchase") | (pl.col("timestamp") >= NOW - dt.timedelta(days=35)))
    recent.write_parquet(tmp_path / "events.parquet")
    args = ["propensity", "fit", "--source", "events", "--events", str(tmp_path / "events.parquet")]
    args += ["--offers", str(tmp_path / "offers.toml"), "--out", str(tmp_path)]
    with frozen(NOW):
        out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    (model,) = (tmp_path / "propensity").glob("*.json")
    assert json.loads(model.read_text())["report"]["selection"]["folds"] == []
    text = " ".join(out.output.replace("│", " ").split())
    assert "no usable inner fold" in text and "0 inner fold(s)" not in text, out.output
