"""Customer-analytics regressions from a review (2026-11-30): each test pins a bug that is fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys.analytics.profiles import AnalyticsConfig, build_profiles
from recsys.analytics.segments import add_rfm_scores
from recsys.columns import ProfileColumns as P
from recsys.exceptions import DataError

START = datetime(2024, 1, 1, tzinfo=UTC)


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
        first = START + timedelta(days=3 * c)
        for k in range(1 + c % 3 + 1):  # 2..3 purchase days
            rows.append((f"r{c}", first + timedelta(days=20 * k), spend))
    for c in range(5):  # one-time buyers
        rows.append((f"o{c}", START + timedelta(days=10 * c), 50.0))
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
            ("a", START + timedelta(hours=9), 5.0),
            ("b", START + timedelta(hours=15), 7.0),
            ("a", START + timedelta(days=5), 3.0),
        ]
    )
    with pytest.raises(DataError, match="calibration-end"):
        build_profiles(tx, calibration_end="2024-01-01", config=AnalyticsConfig(time_unit="week"))


def test_a_tiny_data_set_is_a_clear_error_not_nan() -> None:
    # Two customers: the BG/NBD fit runs r to its upper bound (e^12) and scipy's hyp2f1 returns NaN there.
    tx = _tx(
        [
            ("a", START, 5.0),
            ("a", START + timedelta(hours=4), 5.0),
            ("b", START, 5.0),
            ("b", START + timedelta(days=4), 7.0),
        ]
    )
    with pytest.raises(DataError, match="non-finite predictions"):
        build_profiles(tx, config=AnalyticsConfig(time_unit="day"))
