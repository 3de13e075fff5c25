"""A fitted, calibrated P(accept | customer, offer) model, saved as versioned JSON (no pickle).

Two learners, both from well-kept libraries:

* ``logistic`` (default) — scikit-learn's ``LogisticRegression`` on standardised features (``log1p`` first for
  heavy-tailed money and counts; a missing value counts as the training mean);
* ``gbm`` — LightGBM's gradient-boosted trees (missing values handled natively), saved as LightGBM's own text
  format inside the JSON.

Either score is calibrated with Platt scaling (a one-feature logistic regression on the raw score), fitted on a
later slice of the training rows than the learner saw. The JSON holds the feature list, the parameters, the
calibration, and the validation report (AUC, ECE, reliability table) of the fit that produced it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from recsys.exceptions import ArtifactError, DataError

SCHEMA_VERSION = 2
KIND = "propensity_model"
LEARNERS = ("logistic", "gbm")


@dataclass
class PropensityModel:
    """Calibrated propensity model; ``fit`` learns the ``*_`` attributes and returns ``self``."""

    features: Sequence[str]
    log_features: Sequence[str] = ()
    learner: str = "logistic"
    c: float = 0.05  # inverse L2 strength; 0.01-0.05 scored best on the CJ time split, 1.0 overfits
    seed: int = 0
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    coef_: np.ndarray | None = None
    booster_: str | None = None
    platt_: tuple[float, float] = (1.0, 0.0)
    report: dict[str, Any] = field(default_factory=dict)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).copy()
        for j, name in enumerate(self.features):
            if name in self.log_features:
                x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
        return x

    def _standard(self, x: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None and self.scale_ is not None
        z = (self._transform(x) - self.mean_) / self.scale_
        return np.where(np.isfinite(z), z, 0.0)

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """Return the uncalibrated score (log-odds) per row; raises ``ArtifactError`` when not fitted."""
        x = np.asarray(x, dtype=np.float64)
        if self.learner == "gbm":
            if self.booster_ is None:
                raise ArtifactError("propensity model is not fitted; run `centric propensity fit`")
            import lightgbm

            booster = lightgbm.Booster(model_str=self.booster_)
            return np.asarray(booster.predict(self._transform(x), raw_score=True), dtype=np.float64)
        if self.coef_ is None:
            raise ArtifactError("propensity model is not fitted; run `centric propensity fit`")
        return self.coef_[0] + self._standard(x) @ self.coef_[1:]

    def fit(self, x: np.ndarray, y: np.ndarray, calibration_share: float = 0.2) -> PropensityModel:
        """Fit on rows in time order: the first ``1 - calibration_share`` train, the rest calibrate.

        Raises ``DataError`` when shapes disagree or a slice lacks accepted or declined rows.
        """
        if self.learner not in LEARNERS:
            raise DataError(f"learner must be one of {LEARNERS}, got {self.learner!r}")
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features) or len(y) != len(x):
            raise DataError(
                f"propensity fit: X must be (rows, {len(self.features)}), y (rows,); got {x.shape}, {y.shape}"
            )
        cut = int(len(y) * (1 - calibration_share))
        if len(np.unique(y[:cut])) < 2 or len(np.unique(y[cut:])) < 2:
            raise DataError(
                "propensity fit: the training and the calibration slice both need accepted and declined exposures; "
                "give more history or a longer attribution window"
            )
        tx = self._transform(x[:cut])
        with np.errstate(all="ignore"):
            self.mean_ = np.nan_to_num(np.nanmean(tx, axis=0))
            self.scale_ = np.nan_to_num(np.nanstd(tx, axis=0))
        self.scale_[~(self.scale_ > 0)] = 1.0
        if self.learner == "gbm":
            import lightgbm

            gbm = lightgbm.LGBMClassifier(
                n_estimators=200,
                learning_rate=0.03,
                num_leaves=15,
                min_child_samples=50,
                subsample=0.8,
                subsample_freq=1,
                colsample_bytree=0.8,
                random_state=self.seed,
                deterministic=True,
                n_jobs=1,
                verbose=-1,
            ).fit(tx, y[:cut])
            self.booster_ = gbm.booster_.model_to_string()
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=self.c, max_iter=2000).fit(self._standard(x[:cut]), y[:cut])
            self.coef_ = np.concatenate([lr.intercept_, lr.coef_[0]])
        self.platt_ = platt(self.raw_score(x[cut:]), y[cut:])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Return calibrated P(accept) for each row of ``x`` (columns in ``features`` order)."""
        a, b = self.platt_
        return expit(a * self.raw_score(x) + b)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what :meth:`save` writes)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "learner": self.learner,
            "features": list(self.features),
            "log_features": [f for f in self.log_features if f in self.features],
            "c": self.c,
            "mean": None if self.mean_ is None else self.mean_.tolist(),
            "scale": None if self.scale_ is None else self.scale_.tolist(),
            "coef": None if self.coef_ is None else self.coef_.tolist(),
            "booster": self.booster_,
            "platt": list(self.platt_),
            "report": self.report,
        }

    def save(self, path: Path) -> None:
        """Write the model as JSON (atomically: a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> PropensityModel:
        """Read a model written by :meth:`save`; raises ``ArtifactError`` on a missing file or another schema."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: cannot read propensity model: {exc}") from None
        if data.get("schema_version") != SCHEMA_VERSION or data.get("kind") != KIND:
            raise ArtifactError(
                f"{path}: not a propensity model of schema version {SCHEMA_VERSION}; "
                "refit with `centric propensity fit`"
            )
        model = cls(data["features"], data["log_features"], data["learner"], data.get("c", 0.05))
        model.mean_ = np.asarray(data["mean"], dtype=np.float64)
        model.scale_ = np.asarray(data["scale"], dtype=np.float64)
        model.coef_ = None if data["coef"] is None else np.asarray(data["coef"], dtype=np.float64)
        model.booster_ = data.get("booster")
        model.platt_ = (float(data["platt"][0]), float(data["platt"][1]))
        model.report = data.get("report", {})
        return model


def platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return ``(a, b)`` of Platt scaling, P = sigmoid(a·raw + b), by (nearly unpenalised) logistic regression."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(raw)[:, None], y)
    return float(fitted.coef_[0][0]), float(fitted.intercept_[0])
