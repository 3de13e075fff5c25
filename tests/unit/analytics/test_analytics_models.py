"""Behaviour of the summary conventions, BG/NBD, Gamma-Gamma and CLV on small frames and simulated data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from recsys.analytics import BetaGeoModel, GammaGammaModel, calibration_holdout, rfm_summary
from recsys.analytics.clv import ClvConfig, customer_lifetime_value
from recsys.exceptions import ConfigError, DataError
from tests.helpers.synthetic import simulate_bgnbd


def _tx(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "item_id": ["i"] * len(rows),
            "timestamp": [datetime.fromisoformat(r[1]).replace(tzinfo=UTC) for r in rows],
            "amount": [r[2] for r in rows],
        }
    )


def test_same_day_purchases_count_once_and_first_purchase_is_excluded_from_monetary() -> None:
    tx = _tx(
        [
            ("a", "2024-01-01T09:00", 10.0),
            ("a", "2024-01-01T18:00", 5.0),
            ("a", "2024-01-08T10:00", 20.0),
            ("a", "2024-01-15T10:00", 40.0),
            ("b", "2024-01-10T10:00", 7.0),
            ("c", "2024-02-01T00:00", 1.0),
        ]
    )
    s = rfm_summary(tx, "2024-01-29", time_unit="day").sort("customer_id")
    assert s["customer_id"].to_list() == ["a", "b"]  # c bought after the calibration end
    assert s["frequency"].to_list() == [2, 0]
    assert s["recency"].to_list() == [14.0, 0.0]
    assert s["T"].to_list() == [28.0, 19.0]
    assert s["monetary"].to_list() == [30.0, 0.0]
    assert s["total_spend"].to_list() == [75.0, 7.0]
    weekly = rfm_summary(tx, "2024-01-29", time_unit="week").sort("customer_id")
    assert weekly["T"][0] == pytest.approx(4.0)


def test_calibration_holdout_counts_holdout_purchase_days() -> None:
    tx = _tx(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-20", 6.0),
            ("a", "2024-01-20", 4.0),
            ("a", "2024-01-25", 2.0),
            ("b", "2024-01-05", 3.0),
        ]
    )
    h = calibration_holdout(tx, "2024-01-10", "2024-01-31", time_unit="day").sort("customer_id")
    assert h["frequency_holdout"].to_list() == [2, 0]
    assert h["monetary_holdout"].to_list() == [6.0, 0.0]
    assert h["duration_holdout"][0] == 21.0


def test_unknown_time_unit_and_empty_holdout_are_user_errors() -> None:
    tx = _tx([("a", "2024-01-01", 1.0)])
    with pytest.raises(DataError, match="time unit"):
        rfm_summary(tx, time_unit="month")
    with pytest.raises(DataError, match="holdout"):
        calibration_holdout(tx, "2024-01-01")


def test_bgnbd_recovers_simulated_parameters() -> None:
    truth = (0.8, 5.0, 0.6, 3.0)
    x, t_x, T = simulate_bgnbd(30_000, *truth, T_max=52.0, seed=7)
    fitted = BetaGeoModel().fit(x, t_x, T).params_
    np.testing.assert_allclose(fitted, truth, rtol=0.15)


def test_bgnbd_predictions_are_consistent() -> None:
    model = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    assert sum(float(model.prob_purchases(k, 39.0)) for k in range(300)) == pytest.approx(1.0, abs=1e-9)
    mean = sum(k * float(model.prob_purchases(k, 39.0)) for k in range(400))
    assert mean == pytest.approx(float(model.expected(39.0)), rel=1e-4)
    # A long silence after several purchases lowers P(alive); no repeat purchases means alive by assumption.
    assert model.p_alive(5, 10.0, 38.0) < model.p_alive(5, 37.0, 38.0)
    assert model.p_alive(0, 0.0, 38.0) == 1.0
    assert model.conditional_expected(10.0, 5, 10.0, 38.0) < model.conditional_expected(10.0, 5, 37.0, 38.0)


def test_bgnbd_rejects_inconsistent_input() -> None:
    with pytest.raises(DataError, match="recency"):
        BetaGeoModel().fit(np.array([1.0]), np.array([5.0]), np.array([3.0]))


def test_gamma_gamma_shrinks_towards_population_mean() -> None:
    model = GammaGammaModel.from_params(6.25, 3.74, 15.44)
    one, many = model.conditional_expected_spend([1, 20], [100.0, 100.0])
    assert model.mean_spend() < one < many < 100.0


def test_gamma_gamma_warns_when_spend_depends_on_frequency() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, 500).astype(float)
    with pytest.warns(UserWarning, match="correlated"):
        GammaGammaModel().fit(x, x * 10 + rng.random(500))


def test_clv_grows_with_horizon_and_margin_and_falls_with_discount() -> None:
    model = BetaGeoModel.from_params(0.243, 4.414, 0.793, 2.426)
    args = (np.array([3.0]), np.array([30.0]), np.array([38.0]), np.array([40.0]))
    base, expected = customer_lifetime_value(model, *args, unit_days=7.0, config=ClvConfig())
    longer, _ = customer_lifetime_value(model, *args, unit_days=7.0, config=ClvConfig(horizon_days=730))
    cheaper, _ = customer_lifetime_value(model, *args, unit_days=7.0, config=ClvConfig(annual_discount=0.0))
    assert expected[0] == pytest.approx(float(model.conditional_expected(365 / 7, 3, 30.0, 38.0)))
    assert base[0] < cheaper[0] <= expected[0] * 40.0 * 0.30 + 1e-9
    assert longer[0] > base[0]
    with pytest.raises(ConfigError, match="margin"):
        ClvConfig(margin=1.5)


def test_bgnbd_weighted_patterns_fit_like_the_expanded_customers() -> None:
    x, t_x, T = simulate_bgnbd(3_000, 0.5, 6.0, 0.7, 2.5, T_max=40.0, seed=11)
    t_x, T = np.round(t_x), np.round(T)  # rounding creates repeated patterns
    t_x = np.minimum(np.where(x > 0, t_x, 0.0), T)
    expanded = BetaGeoModel().fit(x, t_x, T)
    patterns, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    assert len(patterns) < len(x)
    weighted = BetaGeoModel().fit(patterns[:, 0], patterns[:, 1], patterns[:, 2], weights=counts)
    np.testing.assert_allclose(weighted.params_, expanded.params_, rtol=1e-4)
    assert weighted.loglik_ == pytest.approx(expanded.loglik_, rel=1e-8)
