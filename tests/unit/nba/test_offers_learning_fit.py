"""Propensity learning: the standard history schema, leak-free features, the fitted model and its versions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.exceptions import ArtifactError, DataError
from recsys.nba.propensity_fit import fit_propensity, newest_model, save_versioned
from recsys.nba.propensity_model import PropensityModel
from recsys.nba.response_features import features_as_of, purchases_frame
from recsys.nba.response_history import ResponseHistory, exposures_frame, label_exposures, outcomes_frame
from recsys.nba.synthetic_history import synthetic_history

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _history(exposures: list[dict], outcomes: list[dict]) -> ResponseHistory:
    items = pl.DataFrame({"offer_id": ["o1", "o1"], "item_id": ["milk", "bread"]})
    kinds = pl.DataFrame({"offer_id": ["o1"], "kind": ["discount"]})
    return ResponseHistory(
        exposures_frame(pl.DataFrame(exposures)), outcomes_frame(pl.DataFrame(outcomes)), items, kinds
    )


def _purchases(rows: list[tuple[str, str, dt.datetime, float]]) -> pl.DataFrame:
    return purchases_frame(
        pl.DataFrame(rows, schema=["customer_id", "item_id", "timestamp", "amount"], orient="row").with_columns(
            pl.col("timestamp").cast(pl.Datetime("us", "UTC"))
        )
    )


def test_redemption_inside_the_window_accepts_and_outside_does_not() -> None:
    day = dt.timedelta(days=1)
    history = _history(
        [
            {"customer_id": "a", "offer_id": "o1", "start": T0, "end": T0 + 3 * day},
            {"customer_id": "b", "offer_id": "o1", "start": T0, "end": T0 + 3 * day},
            {"customer_id": "c", "offer_id": "o1", "start": T0, "end": None},
        ],
        [
            {"customer_id": "a", "offer_id": "o1", "timestamp": T0 + day},
            {"customer_id": "b", "offer_id": "o1", "timestamp": T0 + 4 * day},  # after the end
            {"customer_id": "c", "offer_id": "o1", "timestamp": T0 - day},  # before the exposure
        ],
    )
    assert label_exposures(history, window_days=14).get_column("accepted").to_list() == [True, False, False]


def test_an_unreadable_start_names_the_row_and_the_column() -> None:
    frame = pl.DataFrame({"customer_id": ["a", "b"], "offer_id": ["o1", "o1"], "start": ["2026-03-01", "soon"]})
    with pytest.raises(DataError, match=r"exposures.csv: 1 row\(s\) have an empty or unreadable 'start' \(rows \[2\]"):
        exposures_frame(frame, "exposures.csv")


def test_features_ignore_everything_at_or_after_the_decision_time() -> None:
    """The leak test: purchases, redemptions and exposures from the decision moment on change nothing."""
    past = [("a", "milk", T0 - dt.timedelta(days=3), 10.0), ("a", "tea", T0 - dt.timedelta(days=40), 5.0)]
    history = _history(
        [{"customer_id": "a", "offer_id": "o1", "start": T0 - dt.timedelta(days=20)}],
        [{"customer_id": "a", "offer_id": "o1", "timestamp": T0 - dt.timedelta(days=19)}],
    )
    pairs = pl.DataFrame({"customer_id": ["a"], "offer_id": ["o1"]})
    before = features_as_of(pairs, _purchases(past), history, T0, ("kind=discount",))
    later = [("a", "milk", T0, 99.0), ("a", "bread", T0 + dt.timedelta(days=1), 50.0)]
    leaky = _history(
        [
            {"customer_id": "a", "offer_id": "o1", "start": T0 - dt.timedelta(days=20)},
            {"customer_id": "a", "offer_id": "o1", "start": T0},
        ],
        [
            {"customer_id": "a", "offer_id": "o1", "timestamp": T0 - dt.timedelta(days=19)},
            {"customer_id": "a", "offer_id": "o1", "timestamp": T0 + dt.timedelta(hours=1)},
        ],
    )
    after = features_as_of(pairs, _purchases(past + later), leaky, T0, ("kind=discount",))
    assert after.equals(before)
    row = before.row(0, named=True)
    assert row["days_since_last_purchase"] == pytest.approx(3.0)
    assert row["target_spend_share"] == pytest.approx(10 / 15)
    assert (row["past_redemptions"], row["past_exposures"], row["kind=discount"]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("learner", ["logistic", "gbm"])
def test_fit_on_a_known_mechanism_ranks_and_calibrates_and_survives_a_save(learner: str, tmp_path: Path) -> None:
    # 80 days: long enough that, with a 14-day window, the training period holds inner folds with final labels
    data = synthetic_history(8_000, 800, days=80, seed=3)
    model = fit_propensity(data.history, purchases_frame(data.transactions), learner=learner, day_grain=True)
    report = model.report
    assert report["auc"] > 0.6
    assert report["ece"] < 0.05
    assert len(report["selection"]["folds"]) >= 2, "the settings are chosen on inner folds of the training period"
    # calibrated in the large too: the predictions' level is the validation period's acceptance rate, within three
    # standard errors of that rate (only windows closed by the end of the data are scored)
    rate, n = report["split"]["valid_accept_rate"], report["split"]["valid_exposures"]
    assert report["mean_predicted"] == pytest.approx(rate, abs=3 * (rate * (1 - rate) / n) ** 0.5)
    path = save_versioned(model, tmp_path)
    assert path.parent == tmp_path / "propensity" and newest_model(tmp_path) == path
    loaded = PropensityModel.load(path)
    x = np.abs(np.random.default_rng(0).normal(size=(50, len(model.features)))) * 5
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.report["version"] == path.stem


def test_newest_model_is_none_without_a_fit_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    assert newest_model(tmp_path) is None
    (tmp_path / "m.json").write_text('{"schema_version": 1}')
    with pytest.raises(ArtifactError, match="m.json: not a propensity model"):
        PropensityModel.load(tmp_path / "m.json")


def test_a_validation_cut_outside_the_exposures_is_a_clear_error_not_a_traceback() -> None:
    data = synthetic_history(1_000, 100, days=20, seed=1)
    purchases = purchases_frame(data.transactions)
    starts = data.history.exposures.get_column("start")
    with pytest.raises(DataError, match="no exposures start before the validation cut"):
        fit_propensity(data.history, purchases, valid_from=starts.min(), day_grain=True)
    with pytest.raises(DataError, match="no exposures start on or after the validation cut"):
        fit_propensity(
            data.history,
            purchases,
            valid_from=starts.max() + dt.timedelta(days=1),
            day_grain=True,
        )


def test_propensity_fit_names_a_bad_valid_from_instead_of_a_traceback() -> None:
    from typer.testing import CliRunner

    from training.cli import app

    out = CliRunner().invoke(app, ["propensity", "fit", "--source", "files", "--valid-from", "2026-13-01"])
    assert out.exit_code == 2 and "--valid-from" in out.output and "2026-13-01" in out.output, out.output


def test_trailing_history_features_count_only_the_window_before_the_decision_time() -> None:
    """The trailing-window and recency features: an exposure or redemption older than the window is left out of
    the window counts (not of the cumulative ones), and those at or after the decision time change nothing."""
    past_exposures = [
        {"customer_id": "a", "offer_id": "o1", "start": T0 - dt.timedelta(days=200)},
        {"customer_id": "a", "offer_id": "o2", "start": T0 - dt.timedelta(days=100)},
        {"customer_id": "a", "offer_id": "o1", "start": T0 - dt.timedelta(days=10)},
    ]
    past_outcomes = [
        {"customer_id": "a", "offer_id": "o1", "timestamp": T0 - dt.timedelta(days=195)},
        {"customer_id": "a", "offer_id": "o1", "timestamp": T0 - dt.timedelta(days=6)},
    ]
    purchases = _purchases([("a", "milk", T0 - dt.timedelta(days=3), 10.0)])
    pairs = pl.DataFrame({"customer_id": ["a", "b"], "offer_id": ["o1", "o1"]})
    before = features_as_of(pairs, purchases, _history(past_exposures, past_outcomes), T0)
    leaky = _history(
        [*past_exposures, {"customer_id": "a", "offer_id": "o2", "start": T0}],
        [*past_outcomes, {"customer_id": "a", "offer_id": "o1", "timestamp": T0 + dt.timedelta(hours=1)}],
    )
    assert features_as_of(pairs, purchases, leaky, T0).equals(before)
    a, b = before.rows(named=True)
    assert (a["past_exposures"], a["exposures_180d"], a["exposures_90d"]) == (3.0, 2.0, 1.0)
    assert (a["past_redemptions"], a["redemptions_180d"], a["redemptions_90d"]) == (2.0, 1.0, 1.0)
    assert a["days_since_last_exposure"] == pytest.approx(10.0)
    assert a["days_since_last_redemption"] == pytest.approx(6.0)
    # a customer with no history: zero counts, recency unknown (missing), not zero days
    assert (b["exposures_90d"], b["redemptions_180d"]) == (0.0, 0.0)
    assert b["days_since_last_exposure"] is None and b["days_since_last_redemption"] is None


def test_logged_events_features_are_as_of_the_impression_not_as_of_now(tmp_path: Path) -> None:
    """The leak test for the event-store source (``--source events``): the features of an impression come from
    the events before its day only, whatever the customer did later that day or after."""
    from recsys.nba.propensity_fit import response_table
    from training.jobs.propensity import load_history

    shown = T0 + dt.timedelta(hours=10)

    def event(kind: str, at: dt.datetime, **fields: object) -> dict[str, object]:
        return {"type": kind, "customer_id": "a", "timestamp": at.isoformat()} | fields

    past = [
        event("purchase", T0 - dt.timedelta(days=5), item_id="milk", price=4.0, quantity=2),
        event("impression", T0 - dt.timedelta(days=9), offer_id="o1"),
        event("redeem", T0 - dt.timedelta(days=8), offer_id="o1"),
        event("impression", shown, offer_id="o1"),
    ]
    later = [
        event("purchase", shown + dt.timedelta(hours=1), item_id="bread", price=90.0, quantity=1),
        event("redeem", shown + dt.timedelta(hours=2), offer_id="o1"),
        event("purchase", T0 + dt.timedelta(days=3), item_id="milk", price=50.0, quantity=3),
        event("impression", T0 + dt.timedelta(days=4), offer_id="o1"),
    ]

    def features(events: list[dict[str, object]], name: str) -> dict[str, object]:
        path = tmp_path / name
        path.write_text("\n".join(json.dumps(e) for e in events))
        history, purchases = load_history("events", events=path)
        table, names = response_table(history, purchases, day_grain=True)
        row = table.filter(pl.col("start") == shown).row(0, named=True)
        return {f: row.get(f) for f in names}

    before, after = features(past, "past.jsonl"), features(past + later, "all.jsonl")
    assert after == before
    assert before["days_since_last_purchase"] == pytest.approx(5.0)
    assert (before["spend_90d"], before["past_redemptions"], before["past_exposures"]) == (8.0, 1.0, 1.0)
