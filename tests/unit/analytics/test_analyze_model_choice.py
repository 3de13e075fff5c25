"""`centric analyze` chooses the CLV model on a holdout, records the choice and writes the tracking check."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from recsys.analytics.btyd import MODELS, make_model
from recsys.analytics.selection import ModelScore, choose, holdout_frame
from recsys.columns import ProfileColumns as P
from recsys.exceptions import ConfigError, DataError
from tests.helpers.btyd_sim import simulate_pnbd, to_transactions
from training.jobs.analyze import run_analyze

END = "2024-12-31"


@pytest.fixture(scope="module")
def data() -> SimpleNamespace:
    # Pareto/NBD customers in days over two years (first purchases spread over all of it)
    x, t_x, T, _ = simulate_pnbd(700, 0.55, 74.0, 0.61, 82.0, T_max=730.0, holdout=0.0, seed=21)
    return SimpleNamespace(transactions=to_transactions(x, t_x, T, end=END, seed=21), catalog=None)


@pytest.fixture(scope="module")
def auto_run(data: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path, datetime]:
    out = tmp_path_factory.mktemp("auto")
    summary = run_analyze(data, out, time_unit="day")
    first = data.transactions["timestamp"].min()
    return summary, json.loads((out / "models.json").read_text()), out, first


def test_analyze_chooses_the_model_with_the_lowest_holdout_error_and_records_every_candidate(auto_run) -> None:
    summary, models, _, _ = auto_run
    selection = models["model_selection"]
    assert set(selection["models"]) == set(MODELS)
    maes = {name: m["mae_per_customer"] for name, m in selection["models"].items()}
    assert selection["chosen"] == min(maes, key=maes.__getitem__)
    assert models["clv_model"]["name"] == summary["clv_model"] == selection["chosen"]
    assert selection["reason"].startswith("auto")
    for name, m in selection["models"].items():
        assert set(m["params"]) >= {*MODELS[name].param_names, "loglik"}
        assert m["actual_total"] == summary["holdout"]["actual_total"]
    # without --calibration-end: the last half of the data's span is the holdout; profiles as of the last day
    assert "50 % holdout" in selection["split"]["rule"]
    assert selection["split"]["observation_end"] == summary["as_of"] == END
    first_day = np.datetime64(auto_run[3].date(), "D")
    span = (np.datetime64(END) - first_day).astype(int)
    assert selection["split"]["calibration_end"] == str(first_day + span // 2)


def test_the_holdout_check_tracks_weekly_purchases_that_add_up_to_the_holdout(auto_run) -> None:
    summary, models, out, _ = auto_run
    holdout = summary["holdout"]
    rows = holdout["tracking"]
    cal_end = models["model_selection"]["split"]["calibration_end"]
    hold = [r for r in rows if r["phase"] == "holdout"]
    assert all(r["week_end"] <= cal_end for r in rows if r["phase"] == "calibration")
    assert all(r["week_end"] > cal_end for r in hold)
    assert sum(r["actual"] for r in hold) == holdout["actual_total"]
    # the conditional weekly forecasts add up to the per-customer forecast of the whole holdout
    assert sum(r["predicted_conditional"] for r in hold) == pytest.approx(
        holdout["predicted_total"], abs=0.01 * len(hold)
    )
    assert rows[-1]["actual_cumulative"] == sum(r["actual"] for r in rows)
    assert rows[-1]["predicted_cumulative"] == pytest.approx(sum(r["predicted"] for r in rows), abs=0.01 * len(rows))
    assert holdout["tracking_totals"]["holdout_actual"] == holdout["actual_total"]
    assert (out / "plots" / "holdout_tracking.png").stat().st_size > 1000
    assert (out / "plots" / "calibration_holdout.png").stat().st_size > 1000


def test_models_json_states_the_horizon_of_the_model_columns(data: SimpleNamespace, tmp_path: Path) -> None:
    run_analyze(data, tmp_path, time_unit="day", horizon_days=180, clv_model="mbgnbd", plots=False)
    models = json.loads((tmp_path / "models.json").read_text())
    assert "180 days" in models["columns"][P.expected_purchases]
    assert "180 days" in models["columns"][P.clv]
    assert models["clv"]["horizon_days"] == 180


def test_a_forced_model_is_the_only_one_fitted_and_still_scored(data: SimpleNamespace, tmp_path: Path) -> None:
    summary = run_analyze(data, tmp_path, time_unit="day", clv_model="bgnbd", plots=False)
    models = json.loads((tmp_path / "models.json").read_text())
    assert set(models["model_selection"]["models"]) == {"bgnbd"}
    assert models["model_selection"]["reason"] == "forced by --clv-model"
    assert summary["holdout"]["model"] == "bgnbd"
    profiles = pl.read_parquet(tmp_path / "profiles.parquet")
    assert (profiles.filter(pl.col(P.frequency) == 0)[P.churn_risk] == 0).all()


def test_without_a_holdout_the_default_model_is_used_and_the_reason_recorded(
    data: SimpleNamespace, tmp_path: Path
) -> None:
    summary = run_analyze(data, tmp_path, time_unit="day", calibration_end=END, plots=False)
    models = json.loads((tmp_path / "models.json").read_text())
    assert models["model_selection"]["chosen"] == "mbgnbd"
    assert "no holdout" in models["model_selection"]["reason"]
    assert summary["holdout"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [({"clv_model": "pareto"}, "unknown CLV model 'pareto'"), ({"holdout_fraction": 1.5}, "holdout fraction")],
)
def test_bad_model_options_are_clear_errors(data: SimpleNamespace, tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_analyze(data, tmp_path, time_unit="day", plots=False, **options)


def _score(name: str, mae: float) -> ModelScore:
    return ModelScore(name, make_model(name), np.zeros(1), {"mae_per_customer": mae}, 0.0)


def test_the_lowest_holdout_error_wins_and_a_near_tie_goes_to_the_faster_model() -> None:
    assert choose([_score("bgnbd", 0.80), _score("mbgnbd", 0.79), _score("pnbd", 0.75)]).name == "pnbd"
    # all three reduce to the NBD when the data show no dropout: equal errors up to rounding
    tied = [_score("bgnbd", 0.9397397), _score("mbgnbd", 0.9397398), _score("pnbd", 0.9397396)]
    assert choose(tied).name == "mbgnbd"
    failed = ModelScore("pnbd", None, None, {}, 0.0, "did not converge")
    assert choose([failed, _score("bgnbd", 1.0)]).name == "bgnbd"
    with pytest.raises(DataError, match="did not converge"):
        choose([failed])


def test_when_the_chosen_model_fails_on_the_profile_period_the_next_best_is_used_and_said(
    data: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.jobs.analyze as job

    real = job.build_profiles
    refused: list[str] = []

    def first_refused(*args, **kwargs):
        if not refused:
            refused.append(kwargs["config"].model)
            raise DataError("non-finite predictions (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "build_profiles", first_refused)
    summary = run_analyze(data, tmp_path, time_unit="day", plots=False)
    selection = json.loads((tmp_path / "models.json").read_text())["model_selection"]
    ranked = sorted(selection["models"], key=lambda n: selection["models"][n]["mae_per_customer"])
    assert selection["chosen"] != refused[0]
    assert selection["chosen"] == next(n for n in ranked if n != refused[0])
    assert f"{refused[0]} failed on the profile period" in selection["reason"]
    assert summary["clv_model"] == selection["chosen"] == summary["holdout"]["model"]


def test_the_conditional_tracking_on_a_sample_of_customers_matches_the_full_computation(
    data: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.analytics.tracking as tracking
    from recsys.analytics.selection import split_by_fraction

    tx = data.transactions
    split = split_by_fraction(tx)
    frame = holdout_frame(tx, split, "day")
    model = make_model("mbgnbd").fit(*(frame[c].to_numpy().astype(float) for c in (P.frequency, P.recency, P.T)))
    full = tracking.weekly_tracking(tx, frame, model, split, 1.0)
    monkeypatch.setattr(tracking, "MAX_PATTERNS", 300)
    sampled = tracking.weekly_tracking(tx, frame, model, split, 1.0)
    assert [r["actual"] for r in sampled] == [r["actual"] for r in full]
    total = sum(r["predicted_conditional"] for r in full if r["phase"] == "holdout")
    approx = sum(r["predicted_conditional"] for r in sampled if r["phase"] == "holdout")
    # 300 of 486 calibration customers, heavy buyers weigh most: a sampling error of up to ~20 % here; at the real
    # threshold (100,000 customers) it is well under 1 %
    assert approx == pytest.approx(total, rel=0.3)
    assert approx != total


def test_the_choice_on_many_customers_is_made_on_a_seeded_sample(data: SimpleNamespace) -> None:
    from recsys.analytics.selection import split_by_fraction

    split = split_by_fraction(data.transactions)
    full = holdout_frame(data.transactions, split, "day")
    sample = holdout_frame(data.transactions, split, "day", max_customers=100)
    assert sample.height == 100 < full.height
    again = holdout_frame(data.transactions, split, "day", max_customers=100)
    assert sample["customer_id"].to_list() == again["customer_id"].to_list()  # the same customers every time
    assert set(sample["customer_id"]) <= set(full["customer_id"])
