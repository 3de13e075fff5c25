"""Propensity: the logistic model learns a real signal, is calibrated, and round-trips through JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.exceptions import ArtifactError, DataError
from recsys.nba.propensity import LogisticPropensity, calibration_table, prior_probability
from tests.helpers.scoring import roc_auc


def synthetic(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.exponential(50.0, n), rng.normal(size=n)])
    z = -2.0 + 1.5 * x[:, 0] + 0.8 * np.log1p(x[:, 1]) - 3.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return x, y


def test_fit_separates_responders_and_is_calibrated_on_new_data(tmp_path: Path) -> None:
    x, y = synthetic()
    model = LogisticPropensity(["affinity", "spend", "noise"], log_features=["spend"]).fit(x, y)
    x2, y2 = synthetic(seed=1)
    p = model.predict_proba(x2)
    assert roc_auc(p, y2) > 0.8
    table = calibration_table(p, y2)
    assert table["ece"] < 0.03
    assert abs(p.mean() - y2.mean()) < 0.02
    model.save(tmp_path / "m.json")
    assert np.allclose(LogisticPropensity.load(tmp_path / "m.json").predict_proba(x2), p)


def test_missing_features_count_as_the_training_mean() -> None:
    x, y = synthetic()
    model = LogisticPropensity(["a", "b", "c"], log_features=["b"]).fit(x, y)
    row = np.array([[np.nan, np.nan, np.nan]])
    assert 0 < model.predict_proba(row)[0] < 1


def test_one_class_data_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        LogisticPropensity(["a"]).fit(np.zeros((10, 1)), np.zeros(10))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ArtifactError):
        LogisticPropensity.load(tmp_path / "x.json")


def test_prior_is_the_base_rate_for_an_average_customer_and_rises_with_affinity() -> None:
    p = prior_probability(0.08, np.array([0.5, 0.0, 1.0, np.nan]), np.array([0.5, 0.5, 0.5, np.nan]))
    assert p[0] == pytest.approx(0.08) and p[3] == pytest.approx(0.08)
    assert p[1] < p[0] < p[2]


def test_auc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(2)
    s, y = rng.random(200), rng.random(200) < 0.3
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]]
    assert roc_auc(s, y) == pytest.approx(np.mean(pairs))
