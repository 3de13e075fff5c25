"""Uplift: lift per segment with intervals, the two-model learner, and decide ranking by the increment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.exceptions import ConfigError, DataError
from recsys.nba.experiments import experiment_from_dict
from recsys.nba.segment_lift import segment_lifts
from recsys.nba.uplift import TwoModelUplift
from training.jobs.decide import run_decide
from training.jobs.report import events_frame, run_experiment_report

CATALOG = """
[[offer]]
id = "save"
kind = "amount_discount"
channels = ["app"]
value = 30
cost = 2
max_contacts = 150

[[experiment]]
id = "exp"
salt = "u1"
arms = [{ name = "offer", weight = 0.5 }, { name = "control", weight = 0.5, holdout = true }]
"""


def _population(n: int = 1200, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Half 'Loyal' (buy 60 % with or without an offer), half 'At Risk' (10 % without, 40 % with one)."""
    rng = np.random.default_rng(seed)
    segment = np.where(np.arange(n) % 2 == 0, "Loyal", "At Risk")
    profiles = pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "segment": segment,
            "lifecycle": np.where(segment == "Loyal", "active", "at_risk"),
            "frequency": np.where(segment == "Loyal", 12, 2) + rng.integers(0, 3, n),
            "p_alive": np.where(segment == "Loyal", 0.9, 0.4) + rng.uniform(-0.05, 0.05, n),
            "clv": rng.gamma(2.0, 100.0, n),
        }
    )
    base = np.where(segment == "Loyal", 0.6, 0.1)
    effect = np.where(segment == "Loyal", 0.0, 0.3)
    return profiles, base, effect


def _events(profiles: pl.DataFrame, treated: np.ndarray, base: np.ndarray, effect: np.ndarray) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    bought = rng.random(profiles.height) < base + treated * effect
    ids = profiles.get_column("customer_id").filter(pl.Series(bought)).to_list()
    return events_frame([{"type": "purchase", "customer_id": c, "price": 10, "quantity": 1} for c in ids])


START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _timed(events: pl.DataFrame, at: dt.datetime) -> pl.DataFrame:
    """``events`` at ``at``, after one impression of the offer that opens the experiment's window at START."""
    opening = pl.DataFrame({"type": ["impression"], "customer_id": ["c0"], "offer_id": ["save"]})
    return pl.concat([opening.with_columns(pl.lit(START).alias("timestamp")),
                      events.with_columns(pl.lit(at).alias("timestamp"))], how="diagonal_relaxed")  # fmt: skip


def _arms(profiles: pl.DataFrame) -> np.ndarray:
    arms = [{"name": "offer", "weight": 0.5}, {"name": "control", "weight": 0.5, "holdout": True}]
    experiment = experiment_from_dict({"id": "exp", "salt": "u1", "arms": arms}, "test")
    return (experiment.assign(profiles.get_column("customer_id").to_list()) == "offer").to_numpy()


def test_lift_per_segment_finds_the_segment_the_offer_moves() -> None:
    profiles, base, effect = _population()
    treated = _arms(profiles)
    events = _events(profiles, treated, base, effect)
    assignments = profiles.select("customer_id", "segment", "lifecycle").with_columns(
        pl.Series("arm", np.where(treated, "offer", "control"))
    )
    outcomes = (
        events.select("customer_id")
        .unique()
        .with_columns(pl.lit(True).alias("converted"), pl.lit(0.0).alias("revenue"))
    )
    rows = {(r["dimension"], r["segment"]): r for r in segment_lifts(assignments, outcomes, "control")}
    at_risk, loyal = rows[("RFM segment", "At Risk")], rows[("RFM segment", "Loyal")]
    assert at_risk["conversion_diff_ci"][0] > 0.15  # +0.30 planted
    assert loyal["conversion_diff_ci"][0] < 0 < loyal["conversion_diff_ci"][1]  # nothing planted
    assert rows[("lifecycle stage", "at_risk")]["conversion_diff"] == pytest.approx(at_risk["conversion_diff"])
    assert not any(d == "loyalty tier" for d, _ in rows)  # no tier column: no such rows


def test_experiment_report_gives_segment_rows_with_intervals(tmp_path: Path) -> None:
    profiles, base, effect = _population()
    profiles.write_parquet(tmp_path / "profiles.parquet")
    (tmp_path / "experiments.json").write_text(
        '[{"id": "exp", "salt": "u1", "offers": [], "arms": [{"name": "offer", "weight": 0.5, "holdout": false}, '
        '{"name": "control", "weight": 0.5, "holdout": true}]}]'
    )
    pl.DataFrame({"customer_id": profiles.get_column("customer_id"), "tier": "gold"}).write_csv(tmp_path / "loy.csv")
    events = _events(profiles, _arms(profiles), base, effect)
    result = run_experiment_report("exp", tmp_path, events, loyalty=tmp_path / "loy.csv")
    dims = {r["dimension"] for r in result["segments"]}
    assert dims == {"RFM segment", "lifecycle stage", "loyalty tier"}
    gold = next(r for r in result["segments"] if r["segment"] == "gold")
    assert gold["customers"] + gold["control_customers"] == profiles.height


def test_the_two_model_learner_recovers_where_the_effect_is() -> None:
    profiles, base, effect = _population(2000)
    treated = np.random.default_rng(3).random(profiles.height) < 0.5
    y = (np.random.default_rng(4).random(profiles.height) < base + treated * effect).astype(float)
    uplift = TwoModelUplift().fit(profiles, treated, y).uplift(profiles)
    at_risk = profiles.get_column("segment").to_numpy() == "At Risk"
    assert uplift[at_risk].mean() == pytest.approx(0.3, abs=0.08)
    assert abs(uplift[~at_risk].mean()) < 0.08


def test_decide_with_the_uplift_objective_spends_the_budget_where_the_offer_changes_behaviour(tmp_path: Path) -> None:
    profiles, base, effect = _population()
    profiles.write_parquet(tmp_path / "profiles.parquet")
    (tmp_path / "offers.toml").write_text(CATALOG)
    events = _timed(_events(profiles, _arms(profiles), base, effect), START + dt.timedelta(days=3))
    summary = run_decide(tmp_path, tmp_path / "offers.toml", objective="uplift", events=events)
    assert summary["objective"] == "uplift (experiment exp, two-model)"
    chosen = pl.read_parquet(tmp_path / "decisions.parquet").join(profiles, on="customer_id")
    assert chosen.height == 150  # the contact budget
    assert (chosen.get_column("segment") == "At Risk").mean() > 0.9
    with pytest.raises(ConfigError, match="needs an experiment with a holdout"):
        run_decide(tmp_path, tmp_path / "offers.toml", objective="uplift", events=events, experiment_id="other")
    with pytest.raises(ConfigError, match="--objective must be"):
        run_decide(tmp_path, tmp_path / "offers.toml", objective="clicks")


def test_uplift_counts_only_purchases_within_the_attribution_window_of_the_experiment(tmp_path: Path) -> None:
    """The planted effect's purchases fall inside the 14-day window; a flood of purchases by the holdout a month
    later (after the window) would erase the effect if it counted. It does not: the choice stays on 'At Risk'."""
    profiles, base, effect = _population()
    profiles.write_parquet(tmp_path / "profiles.parquet")
    (tmp_path / "offers.toml").write_text(CATALOG)
    treated = _arms(profiles)
    inside = _timed(_events(profiles, treated, base, effect), START + dt.timedelta(days=3))
    control = profiles.get_column("customer_id").filter(pl.Series(~treated)).to_list()
    late = events_frame([{"type": "purchase", "customer_id": c, "price": 10, "quantity": 1} for c in control])
    before = _timed(late, START - dt.timedelta(days=2)).filter(pl.col("type") == "purchase")
    after = _timed(late, START + dt.timedelta(days=30)).filter(pl.col("type") == "purchase")
    events = pl.concat([inside, before, after], how="diagonal_relaxed")
    run_decide(tmp_path, tmp_path / "offers.toml", objective="uplift", events=events)
    chosen = pl.read_parquet(tmp_path / "decisions.parquet").join(profiles, on="customer_id")
    assert (chosen.get_column("segment") == "At Risk").mean() > 0.9
    # a window long enough to take the late purchases in makes every holdout customer a buyer: nothing to learn
    with pytest.raises(DataError, match=r"control group needs .* \(596 customers, 596 converted\)"):
        run_decide(tmp_path, tmp_path / "offers.toml", objective="uplift", events=events, window_days=60)
    with pytest.raises(DataError, match="no impression of the experiment's offers"):
        run_decide(
            tmp_path, tmp_path / "offers.toml", objective="uplift", events=inside.filter(pl.col("type") != "impression")
        )
