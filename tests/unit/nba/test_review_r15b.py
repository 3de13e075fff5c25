"""Findings of the review of issue 15 (branch h15): each test failed on the bug it names before its fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.clock import frozen
from recsys.exceptions import DataError
from recsys.nba.propensity_fit import newest_model, save_versioned
from recsys.nba.propensity_model import PropensityModel
from recsys.nba.response_history import exposures_frame

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_an_exposure_ending_at_or_before_its_start_is_a_clear_error_not_a_silent_decline() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "offer_id": ["o", "o", "o"],
            "start": [T0, T0, T0],
            "end": [T0 + dt.timedelta(days=3), T0 - dt.timedelta(days=1), T0],
        }
    )
    with pytest.raises(DataError, match=r"x.csv: 2 row\(s\) end at or before they start \(rows \[2, 3\]"):
        exposures_frame(frame, "x.csv")
    assert exposures_frame(frame.head(1), "x.csv").height == 1


def test_the_newest_model_is_the_last_fitted_even_within_one_second(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (rng.random(400) < 1 / (1 + np.exp(-x[:, 0]))).astype(float)
    wrong = 0
    for i in range(8):  # digests are arbitrary: some of these pairs sort the wrong way by name
        folder = tmp_path / str(i)
        with frozen(T0):
            save_versioned(PropensityModel(("f0", "f1"), c=0.01 * (i + 1)).fit(x, y), folder)
        with frozen(T0 + dt.timedelta(milliseconds=500)):
            last = save_versioned(PropensityModel(("f0", "f1"), c=1.0 + i).fit(x, y), folder)
        wrong += newest_model(folder) != last
    assert wrong == 0


def test_a_model_copied_in_under_another_name_does_not_shadow_a_newer_fit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (rng.random(400) < 1 / (1 + np.exp(-x[:, 0]))).astype(float)
    with frozen(T0):
        PropensityModel(("f0", "f1")).fit(x, y).save(tmp_path / "propensity" / "manual.json")
    with frozen(T0 + dt.timedelta(days=30)):
        fitted = save_versioned(PropensityModel(("f0", "f1"), c=1.0).fit(x, y), tmp_path)
    assert newest_model(tmp_path) == fitted


def test_a_naive_valid_from_is_taken_as_utc_like_the_cli_does() -> None:
    from recsys.nba.propensity_fit import fit_propensity
    from recsys.nba.response_features import purchases_frame
    from recsys.nba.synthetic_history import synthetic_history

    data = synthetic_history(2_000, 200, days=40, seed=1)
    purchases = purchases_frame(data.transactions)
    cut = dt.datetime(2026, 1, 30, tzinfo=dt.UTC)
    aware = fit_propensity(data.history, purchases, day_grain=True, valid_from=cut).report
    naive = fit_propensity(data.history, purchases, day_grain=True, valid_from=cut.replace(tzinfo=None)).report
    assert naive["split"] == aware["split"]


def test_an_event_without_a_timestamp_is_named_by_its_own_row_in_the_events() -> None:
    """The uplift outcome's error named a row of an internal frame (impressions first, then purchases)."""
    from recsys.nba.uplift import converted_in_window

    kinds = ["purchase", "impression", "dismiss", "purchase", "impression", "purchase"]
    times = [T0 - dt.timedelta(days=1), T0, None, T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=1), None]
    events = pl.DataFrame(
        {"type": kinds, "customer_id": ["a", "a", "b", "b", "c", "c"], "offer_id": [None, "o", "o", None, "o", None]}
    ).with_columns(pl.Series("timestamp", times, dtype=pl.Datetime("us", "UTC")))
    with pytest.raises(DataError, match=r"1 impression or purchase event\(s\) .* \(event rows \[6\]\)"):
        converted_in_window(events, ["a", "b", "c"], ["o"], 14)
    # a dismissal without a time is not read; a purchase before the first impression is not an outcome
    assert converted_in_window(events.head(5), ["a", "b", "c"], ["o"], 14).tolist() == [0.0, 1.0, 0.0]
    as_text = events.head(5).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert converted_in_window(as_text, ["a", "b", "c"], ["o"], 14).tolist() == [0.0, 1.0, 0.0]


def test_the_validation_report_scores_only_windows_that_closed_before_the_data_ends() -> None:
    """A live event log ends today: impressions of the last attribution window have no final outcome yet."""
    from recsys.nba.propensity_fit import fit_propensity
    from recsys.nba.response_features import purchases_frame
    from recsys.nba.response_history import ResponseHistory, label_exposures
    from recsys.nba.synthetic_history import synthetic_history

    data = synthetic_history(8_000, 800, days=80, seed=3)
    h = data.history
    cut, end = T0, T0 + dt.timedelta(days=18)
    log = ResponseHistory(
        h.exposures.filter(pl.col("start") < end),
        h.outcomes.filter(pl.col("timestamp") < end),
        h.offer_items,
        h.offer_kinds,
    )
    purchases = purchases_frame(data.transactions).filter(pl.col("ts") < end)
    truth = label_exposures(h, 14).filter((pl.col("start") >= cut) & (pl.col("until") <= end))
    report = fit_propensity(log, purchases, valid_from=cut, day_grain=True).report
    assert report["split"]["valid_exposures"] <= truth.height
    assert report["split"]["valid_accept_rate"] == pytest.approx(truth.get_column("accepted").mean(), abs=0.015)


def test_labels_at_a_cut_on_the_window_edges() -> None:
    """Windows are [start, until): a window ending exactly at the cut is complete there, and its redemption a
    microsecond before the cut counts; a redemption exactly at the cut is not known at the cut."""
    from recsys.nba.response_history import ResponseHistory, label_exposures, labels_at, outcomes_frame

    us = dt.timedelta(microseconds=1)
    cut = T0 + dt.timedelta(days=10)
    exposures = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "offer_id": ["o", "o", "o"],
            "start": [T0, T0 + dt.timedelta(days=1), T0],
            "end": [cut, cut + dt.timedelta(days=1), cut + us],
        }
    )
    outcomes = pl.DataFrame(
        {"customer_id": ["a", "b", "c"], "offer_id": ["o", "o", "o"], "timestamp": [cut - us, cut, cut]}
    )
    labelled = label_exposures(ResponseHistory(exposures_frame(exposures), outcomes_frame(outcomes)))
    assert labelled.get_column("accepted").to_list() == [True, True, True]
    at = labels_at(labelled, cut)
    assert at.get_column("accepted").to_list() == [True, False, False]
    assert at.get_column("complete").to_list() == [True, False, False]
    assert at.get_column("observed_share").to_list()[0] == 1.0
