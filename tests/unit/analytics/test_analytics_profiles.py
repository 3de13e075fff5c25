"""Segments, lifecycle stages, value tiers, profiles and the analyze job's artifacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from recsys.analytics.lifecycle import STAGES, LifecycleConfig, at_risk_customers, lifecycle_stage
from recsys.analytics.profiles import PROFILE_COLUMNS, AnalyticsConfig, build_profiles, segment_top_items
from recsys.analytics.segments import DEFAULT_RULES, SegmentRule, add_rfm_scores
from recsys.analytics.tiers import value_tier
from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError, DataError
from tests.helpers.synthetic import simulate_bgnbd
from training.jobs.analyze import run_analyze

START = datetime(2023, 1, 1, tzinfo=UTC)


def _synthetic_transactions(n: int = 600, seed: int = 3) -> pl.DataFrame:
    """Daily BG/NBD customers with staggered first purchases, two categories of items, spend ~ 20."""
    x, t_x, T = simulate_bgnbd(n, 0.9, 20.0, 0.5, 3.0, T_max=365.0, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n):  # small test data: a loop is fine here
        first = START + timedelta(days=365 - float(T[c]))
        times = [first] + [first + timedelta(days=float(d)) for d in np.sort(rng.uniform(0, t_x[c], int(x[c])))]
        if x[c] > 0:
            times[-1] = first + timedelta(days=float(t_x[c]))
        for t in times:
            rows.append((f"c{c}", f"i{rng.integers(0, 12)}", t, float(rng.gamma(4.0, 5.0))))
    return pl.DataFrame(rows, schema=["customer_id", "item_id", "timestamp", "amount"], orient="row").with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC"), pl.lit(1.0).alias("quantity"), pl.col("amount").alias("price")
    )


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    return _synthetic_transactions()


def test_rfm_scores_are_quintiles_and_every_customer_gets_a_rule_segment() -> None:
    frame = pl.DataFrame(
        {P.days_since_last_purchase: list(range(100)), P.orders: list(range(100)), P.total_spend: [1.0] * 100}
    )
    scored = add_rfm_scores(frame)
    assert scored[P.r_score].value_counts()["count"].to_list() == [20] * 5
    assert scored.filter(pl.col(P.days_since_last_purchase) == 0)[P.r_score].item() == 5
    assert scored.filter(pl.col(P.orders) == 99)[P.f_score].item() == 5
    assert set(scored[P.segment]) <= {rule.name for rule in DEFAULT_RULES}
    custom = add_rfm_scores(frame, (SegmentRule("Everyone", (1, 5), (1, 5)),))
    assert set(custom[P.segment]) == {"Everyone"}
    with pytest.raises(ConfigError, match="score ranges"):
        add_rfm_scores(frame, (SegmentRule("Bad", (0, 7), (1, 5)),))


def test_segment_rules_map_extremes_to_champions_and_lost() -> None:
    # recency and frequency move together: recent buyers buy often
    frame = pl.DataFrame(
        {P.days_since_last_purchase: list(range(100)), P.orders: list(range(100, 0, -1)), P.total_spend: [1.0] * 100}
    )
    scored = add_rfm_scores(frame)
    assert scored.filter(pl.col(P.days_since_last_purchase) == 0)[P.segment].item() == "Champions"
    assert scored.filter(pl.col(P.days_since_last_purchase) == 99)[P.segment].item() == "Lost"


def test_lifecycle_stages_follow_documented_thresholds() -> None:
    as_of = datetime(2024, 6, 30, tzinfo=UTC)

    def d(n: int) -> datetime:
        return as_of - timedelta(days=n)

    frame = pl.DataFrame(
        {
            "name": [
                "prospect",
                "new",
                "lapsed_days",
                "lapsed_p",
                "reactivated",
                "at_risk_churn",
                "at_risk_days",
                "active",
            ],
            P.orders: [0, 1, 3, 5, 3, 4, 4, 4],
            P.first_purchase: [None, d(10), d(400), d(300), d(400), d(200), d(200), d(200)],
            P.last_purchase: [None, d(10), d(200), d(20), d(10), d(5), d(90), d(5)],
            "previous_purchase": [None, None, d(250), d(40), d(200), d(20), d(100), d(20)],
            P.days_since_last_purchase: [None, 10, 200, 20, 10, 5, 90, 5],
            P.p_alive: [None, 1.0, 0.5, 0.05, 0.9, 0.4, 0.9, 0.9],
        }
    ).with_columns((1 - pl.col(P.p_alive)).alias(P.churn_risk), pl.lit(as_of).alias("_as_of"))
    out = frame.with_columns(lifecycle_stage(LifecycleConfig()))
    expected = ["prospect", "new", "lapsed", "lapsed", "reactivated", "at_risk", "at_risk", "active"]
    assert out[P.lifecycle].to_list() == expected
    assert set(expected) == set(STAGES)
    relaxed = frame.with_columns(lifecycle_stage(LifecycleConfig(active_days=120)))
    assert relaxed[P.lifecycle][6] == "active"


def test_value_tiers_split_by_clv_rank() -> None:
    frame = pl.DataFrame({P.clv: np.arange(1000, dtype=float)})
    tiers = frame.with_columns(value_tier())
    counts = dict(tiers[P.value_tier].value_counts().iter_rows())
    assert counts == {"top_1": 10, "top_10": 90, "rest": 900}
    assert tiers.filter(pl.col(P.clv) == 999.0)[P.value_tier].item() == "top_1"
    with pytest.raises(ConfigError):
        value_tier((("a", 0.5), ("b", 0.1)))


def test_profiles_have_contract_columns_and_one_row_per_customer(tx: pl.DataFrame) -> None:
    catalog = pl.DataFrame({"item_id": [f"i{k}" for k in range(12)], "category": ["fruit"] * 6 + ["dairy"] * 6})
    result = build_profiles(tx, catalog=catalog, config=AnalyticsConfig(time_unit="day"))
    prof = result.profiles
    assert prof.columns == list(PROFILE_COLUMNS)
    assert prof.height == tx["customer_id"].n_unique() == prof["customer_id"].n_unique()
    assert prof[P.p_alive].is_between(0, 1).all()
    assert ((prof[P.churn_risk] + prof[P.p_alive] - 1).abs() < 1e-12).all()
    assert (prof[P.clv] >= 0).all()
    assert set(prof[P.lifecycle]) <= set(STAGES)
    assert prof[P.top_categories].list.len().max() == 2
    # recovered purchase-rate parameters are in the right region for daily data (r=0.9, alpha=20)
    assert 0.5 < result.model.params_[0] < 1.5
    risky = at_risk_customers(prof, min_churn=0.5)
    assert (risky[P.churn_risk] >= 0.5).all() and risky[P.clv].is_sorted(descending=True)


def test_segment_top_items_rank_items_by_buyer_share(tx: pl.DataFrame) -> None:
    prof = build_profiles(tx).profiles
    top = segment_top_items(tx, prof, n=5)
    assert top.columns == ["segment", "item_id", "rank", "score"]
    assert top.group_by("segment").agg(pl.len())["len"].max() <= 5
    for _, group in top.group_by("segment"):
        assert group.sort("rank")["score"].is_sorted(descending=True)
        assert group["rank"].sort().to_list() == list(range(1, group.height + 1))


def test_run_analyze_writes_artifacts_and_holdout_check(tx: pl.DataFrame, tmp_path: Path) -> None:
    summary = run_analyze(
        SimpleNamespace(transactions=tx, catalog=None), tmp_path, calibration_end="2023-10-31", time_unit="day"
    )
    models = json.loads((tmp_path / "models.json").read_text())
    assert set(models["bgnbd"]) >= {"r", "alpha", "a", "b", "loglik"}
    assert set(models["gamma_gamma"]) >= {"p", "q", "gamma"}
    profiles = pl.read_parquet(tmp_path / "profiles.parquet")
    assert profiles.height == summary["customers"]
    assert pl.read_parquet(tmp_path / "segment_top_items.parquet").height > 0
    assert json.loads((tmp_path / "summary.json").read_text())["holdout"]["customers"] == profiles.height
    assert sum(summary["lifecycle"].values()) == profiles.height
    for name in ("p_alive_matrix", "clv_distribution", "calibration_holdout"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000


# ====================================================================================================================
# Regressions from the analytics review (was test_analytics_review.py)
#
# Customer-analytics regressions from a review (2026-11-30): each test pins a bug that is fixed.
# ====================================================================================================================


START_2024 = datetime(2024, 1, 1, tzinfo=UTC)


def _tx(rows: list[tuple[str, datetime, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "item_id": ["i"] * len(rows),
            "timestamp": [r[1] for r in rows],
            "amount": [float(r[2]) for r in rows],
        }
    ).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))


def test_one_time_buyers_get_the_lowest_frequency_score_and_old_ones_are_lost() -> None:
    # 6 one-time buyers (the usual majority: 60 % in CDNOW) and 4 repeat buyers, all with distinct recency.
    frame = pl.DataFrame(
        {
            P.days_since_last_purchase: [100, 90, 80, 70, 60, 50, 40, 30, 20, 10],
            P.orders: [1, 1, 1, 1, 1, 1, 2, 3, 4, 5],
            P.total_spend: [10.0] * 10,
        }
    )
    scored = add_rfm_scores(frame)
    one_time = scored.filter(pl.col(P.orders) == 1)
    # The fewest purchases must get the lowest F score; ties share the average rank and land on 2 instead,
    # so "New", "Promising" and "Lost" (all F = 1) are unreachable whenever > 40 % of customers bought once.
    assert one_time[P.f_score].unique().to_list() == [1]
    oldest = scored.filter(pl.col(P.days_since_last_purchase) == 100)
    assert oldest[P.r_score].item() == 1
    assert oldest[P.segment].item() == "Lost"


def test_clv_is_non_negative_and_finite_when_gamma_gamma_q_is_below_one() -> None:
    # Spend per purchase spanning five orders of magnitude across customers: the Gamma-Gamma fit gives q < 1,
    # so p*gamma/(q-1) (the expected spend of customers without repeats) is negative.
    rows: list[tuple[str, datetime, float]] = []
    spends = [1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000]
    for c, spend in enumerate(spends):
        first = START_2024 + timedelta(days=3 * c)
        for k in range(1 + c % 3 + 1):  # 2..3 purchase days
            rows.append((f"r{c}", first + timedelta(days=20 * k), spend))
    for c in range(5):  # one-time buyers
        rows.append((f"o{c}", START_2024 + timedelta(days=10 * c), 50.0))
    result = build_profiles(_tx(rows), calibration_end="2024-04-30", config=AnalyticsConfig(time_unit="day"))
    assert result.gamma_gamma is None  # q <= 1 is refused; profiles fall back to observed mean spend
    clv = result.profiles[P.clv].to_numpy()
    assert np.isfinite(clv).all()
    assert (clv >= 0).all(), dict(zip(result.profiles["customer_id"], clv))


def test_a_calibration_end_on_the_first_purchase_day_is_a_clear_error_not_nan() -> None:
    # e.g. `centric analyze --calibration-end <first data day>`: every T is 0, the fit stayed at its start a = 1
    # and conditional_expected divided by a - 1 (NaN CLV in summary.json). Now: an error saying what to change.
    tx = _tx(
        [
            ("a", START_2024 + timedelta(hours=9), 5.0),
            ("b", START_2024 + timedelta(hours=15), 7.0),
            ("a", START_2024 + timedelta(days=5), 3.0),
        ]
    )
    with pytest.raises(DataError, match="calibration-end"):
        build_profiles(tx, calibration_end="2024-01-01", config=AnalyticsConfig(time_unit="week"))


def test_a_tiny_data_set_is_a_clear_error_not_nan() -> None:
    # Two customers: the BG/NBD fit runs r to its upper bound (e^12) and scipy's hyp2f1 returns NaN there.
    tx = _tx(
        [
            ("a", START_2024, 5.0),
            ("a", START_2024 + timedelta(hours=4), 5.0),
            ("b", START_2024, 5.0),
            ("b", START_2024 + timedelta(days=4), 7.0),
        ]
    )
    with pytest.raises(DataError, match="non-finite predictions"):
        build_profiles(tx, config=AnalyticsConfig(time_unit="day"))
