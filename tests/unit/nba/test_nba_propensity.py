"""Propensity: the fitted model learns a real signal, is calibrated, round-trips through JSON; the prior; ECE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.exceptions import ArtifactError, DataError
from recsys.nba.calibration import calibration_table, ece_noise_floor
from recsys.nba.propensity import prior_probability
from recsys.nba.propensity_model import PropensityModel
from tests.helpers.scoring import roc_auc


def synthetic(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.exponential(50.0, n), rng.normal(size=n)])
    z = -2.0 + 1.5 * x[:, 0] + 0.8 * np.log1p(x[:, 1]) - 3.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return x, y


@pytest.mark.parametrize("calibration", ["platt", "isotonic"])
def test_fit_separates_responders_and_is_calibrated_on_new_data(calibration: str, tmp_path: Path) -> None:
    x, y = synthetic()
    model = PropensityModel(["affinity", "spend", "noise"], ["spend"], calibration=calibration).fit(x, y)
    x2, y2 = synthetic(seed=1)
    p = model.predict_proba(x2)
    assert roc_auc(p, y2) > 0.8
    assert calibration_table(p, y2)["ece"] < 0.03
    assert abs(p.mean() - y2.mean()) < 0.02
    model.save(tmp_path / "m.json")
    assert np.allclose(PropensityModel.load(tmp_path / "m.json").predict_proba(x2), p)


def test_the_calibration_fold_given_as_a_mask_is_the_only_one_the_calibration_sees() -> None:
    x, y = synthetic()
    fold = np.zeros(len(y), dtype=bool)
    fold[:1000] = True
    a = PropensityModel(["a", "b", "c"], ["b"]).fit(x, y, fold)
    y_shifted = y.copy()
    y_shifted[1000:] = y[1000:]  # the learner rows are identical; only the fold decides the calibration
    y_shifted[:1000] = np.roll(y[:1000], 1)
    b = PropensityModel(["a", "b", "c"], ["b"]).fit(x, y_shifted, fold)
    np.testing.assert_allclose(a.raw_score(x), b.raw_score(x))
    assert a.platt_ != b.platt_


def test_missing_features_count_as_the_training_mean() -> None:
    x, y = synthetic()
    model = PropensityModel(["a", "b", "c"], ["b"]).fit(x, y)
    row = np.array([[np.nan, np.nan, np.nan]])
    assert 0 < model.predict_proba(row)[0] < 1


def test_one_class_data_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="accepted and declined"):
        PropensityModel(["a"]).fit(np.zeros((10, 1)), np.zeros(10))
    with pytest.raises(DataError, match="calibration must be one of"):
        PropensityModel(["a"], calibration="beta").fit(np.zeros((10, 1)), np.zeros(10))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ArtifactError):
        PropensityModel.load(tmp_path / "x.json")


def test_a_schema_1_logistic_file_still_loads_and_reads_profile_columns(tmp_path: Path) -> None:
    legacy = {
        "schema_version": 1,
        "kind": "logistic_propensity",
        "features": ["affinity", "spend"],
        "log_features": ["spend"],
        "l2": 0.001,
        "coef": [-1.0, 2.0, 0.0],
        "mean": [0.5, 1.0],
        "scale": [0.25, 1.0],
        "platt": [1.0, 0.0],
    }
    (tmp_path / "old.json").write_text(json.dumps(legacy))
    model = PropensityModel.load(tmp_path / "old.json")
    assert model.profile_features and model.learner == "logistic"
    # logit = -1 + 2 * (0.75 - 0.5) / 0.25 = 1
    assert model.predict_proba(np.array([[0.75, np.e - 1]]))[0] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_prior_is_the_base_rate_for_an_average_customer_and_rises_with_affinity() -> None:
    p = prior_probability(0.08, np.array([0.5, 0.0, 1.0, np.nan]), np.array([0.5, 0.5, 0.5, np.nan]))
    assert p[0] == pytest.approx(0.08) and p[3] == pytest.approx(0.08)
    assert p[1] < p[0] < p[2]


def test_auc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(2)
    s, y = rng.random(200), rng.random(200) < 0.3
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]]
    assert roc_auc(s, y) == pytest.approx(np.mean(pairs))


def test_ece_uses_equal_mass_bins_and_its_noise_floor_is_what_calibrated_outcomes_show() -> None:
    p = np.array([0.1] * 50 + [0.3] * 50)
    y = np.array([0.0] * 45 + [1.0] * 5 + [0.0] * 25 + [1.0] * 25)  # bin 1 exact, bin 2 off by 0.2
    table = calibration_table(p, y, bins=2)
    assert [b["rows"] for b in table["bins"]] == [50, 50]
    assert table["ece"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.2)
    rng = np.random.default_rng(5)
    q = rng.beta(1.5, 10, 4000)
    floor = ece_noise_floor(q, draws=100)
    seen = [calibration_table(q, (rng.random(len(q)) < q).astype(float))["ece"] for _ in range(100)]
    assert 0 < floor < 0.03 and floor == pytest.approx(np.mean(seen), rel=0.15)
