"""The fit at a validation cut knows only what was known before it; its settings are chosen on training folds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from recsys.nba.propensity_fit import fit_propensity
from recsys.nba.propensity_select import (
    MIN_OBSERVED_SHARE,
    calibration_fold,
    choose_settings,
    inner_cuts,
    rows_at_cut,
)
from recsys.nba.response_features import purchases_frame
from recsys.nba.response_history import (
    ResponseHistory,
    exposures_frame,
    label_exposures,
    labels_at,
    outcomes_frame,
)
from recsys.nba.synthetic_history import synthetic_history

CUT = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _labelled() -> pl.DataFrame:
    """Four training exposures with 10-day windows: closed before the cut, 60 % and 20 % seen at it."""
    exposures = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "offer_id": ["o"] * 4,
            "start": [CUT - 30 * DAY, CUT - 20 * DAY, CUT - 6 * DAY, CUT - 2 * DAY],
        }
    )
    outcomes = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "offer_id": ["o"] * 4,
            "timestamp": [CUT - 29 * DAY, CUT - 19 * DAY, CUT + DAY, CUT + DAY],  # c, d redeem after the cut
        }
    )
    history = ResponseHistory(exposures_frame(exposures), outcomes_frame(outcomes))
    return label_exposures(history, window_days=10)


def test_a_redemption_after_the_cut_does_not_label_a_training_exposure() -> None:
    at = labels_at(_labelled(), CUT)
    assert at.get_column("accepted").to_list() == [True, True, False, False]  # c and d: not known at the cut
    assert at.get_column("complete").to_list() == [True, True, False, False]
    assert at.get_column("observed_share").to_list() == [1.0, 1.0, 0.6, 0.2]
    assert _labelled().get_column("accepted").to_list() == [True] * 4  # the final labels, for validation only


def test_open_windows_are_censored_or_dropped_and_only_final_labels_calibrate() -> None:
    rows = rows_at_cut(_labelled(), CUT, "final")
    assert MIN_OBSERVED_SHARE == 0.5
    assert rows.rows.get_column("customer_id").to_list() == ["a", "b", "c"]  # d: 20 % of its window seen
    assert (rows.censored, rows.dropped) == (1, 1)
    assert rows.rows.filter(pl.Series(rows.fold)).get_column("complete").all()
    recent = rows_at_cut(_labelled(), CUT, "recent")
    assert recent.rows.filter(pl.Series(recent.fold)).get_column("customer_id").to_list() == ["c"]


def test_redemptions_in_the_validation_period_change_nothing_the_fit_learns() -> None:
    """The leak test for labels: extra redemptions from the cut on, crediting training exposures whose windows
    cross it, leave the fitted model and the chosen settings exactly as they were."""
    data = synthetic_history(8_000, 800, days=80, seed=3)
    purchases = purchases_frame(data.transactions)
    cut = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    exposures = data.history.exposures
    later_pairs = exposures.filter(pl.col("start") >= cut).select("customer_id", "offer_id").unique()
    crossing = (
        exposures.filter((pl.col("start") < cut) & (pl.col("start") >= cut - 10 * DAY))
        .join(later_pairs, on=["customer_id", "offer_id"], how="anti")  # no validation exposure gets them
        .unique(["customer_id", "offer_id"])
    )
    assert crossing.height > 100
    planted = crossing.select("customer_id", "offer_id", (pl.col("start") + 12 * DAY).alias("timestamp"))
    assert planted.get_column("timestamp").min() >= cut  # type: ignore[operator]
    leaky = ResponseHistory(
        exposures,
        pl.concat([data.history.outcomes, planted]),
        data.history.offer_items,
        data.history.offer_kinds,
    )
    clean_fit = fit_propensity(data.history, purchases, valid_from=cut, day_grain=True)
    leaky_fit = fit_propensity(leaky, purchases, valid_from=cut, day_grain=True)
    assert leaky_fit.report["selection"] == clean_fit.report["selection"]
    assert leaky_fit.report["split"] == clean_fit.report["split"]
    # equal up to the last bits of floating-point summation order (a leak moves them by far more)
    np.testing.assert_allclose(leaky_fit.coef_, clean_fit.coef_, rtol=1e-9)  # type: ignore[arg-type]
    np.testing.assert_allclose(leaky_fit.platt_, clean_fit.platt_, rtol=1e-9)


def test_the_calibration_fold_keeps_whole_moments_as_near_its_share_as_they_allow() -> None:
    moments = [CUT - 30 * DAY] * 50 + [CUT - 20 * DAY] * 40 + [CUT - 10 * DAY] * 10
    starts = pl.Series("start", moments)
    # the 80 % point falls inside the 40-row moment: taking it would make the fold half the rows
    assert calibration_fold(starts, 0.2).sum() == 10
    assert calibration_fold(starts, 0.5).sum() == 50  # 50 rows is exactly the share
    one_moment = calibration_fold(pl.Series("start", [CUT] * 10), 0.2)
    assert one_moment.tolist() == [False] * 8 + [True] * 2  # a single moment: the later rows in their order


def test_inner_cuts_move_past_a_large_moment_so_each_point_gets_its_own_fold() -> None:
    """One large campaign holding the 50, 65 and 80 % points must not collapse three inner folds into one."""
    days = [60] * 20 + [40] * 60 + [35] * 10 + [30] * 10  # closed 10-day windows: every label is final at the cut
    train = pl.DataFrame({"start": [CUT - d * DAY for d in days]}).with_columns(
        (pl.col("start") + 10 * DAY).alias("until"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("redeemed_at"),
    )
    assert inner_cuts(train, CUT) == [CUT - 40 * DAY, CUT - 35 * DAY, CUT - 30 * DAY]
    # fewer later moments than points: as many folds as there are moments after the first
    assert inner_cuts(train.filter(pl.col("start") <= CUT - 40 * DAY), CUT) == [CUT - 40 * DAY]


def test_the_inner_folds_choose_the_feature_set_that_predicts_and_report_it() -> None:
    """Of two feature sets, the one whose feature drives acceptance wins on the training period's inner folds."""
    rng = np.random.default_rng(3)
    n = 1_500
    starts = [CUT - (90 - int(d)) * DAY for d in np.sort(rng.integers(0, 80, n))]
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    accepted = rng.random(n) < 1 / (1 + np.exp(-(2.0 * signal - 2.0)))
    train = pl.DataFrame({"start": starts, "signal": signal, "noise": noise}).with_columns(
        (pl.col("start") + 5 * DAY).alias("until"),
        pl.when(pl.Series(accepted)).then(pl.col("start") + DAY).alias("redeemed_at"),
    )
    sets = {"noise_only": ("noise",), "with_signal": ("signal",)}
    chosen = choose_settings(train, CUT, sets["noise_only"], (), "logistic", "platt", sets)
    assert (chosen["feature_set"], chosen["features"]) == ("with_signal", ["signal"])
    scored = {c["feature_set"] for c in chosen["candidates"]}
    assert scored == {"noise_only", "with_signal"} and len(chosen["folds"]) == 3
