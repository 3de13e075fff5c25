"""A fitted, calibrated P(accept | customer, offer) model, saved as versioned JSON (no pickle).

Two learners, both from well-kept libraries:

* ``logistic`` (default) — scikit-learn's ``LogisticRegression`` on standardised features (``log1p`` first for
  heavy-tailed money and counts; a missing value counts as the training mean);
* ``gbm`` — LightGBM's gradient-boosted trees (missing values handled natively), saved as LightGBM's own text
  format inside the JSON.

Either score is calibrated on a later slice of the training rows than the learner saw (the caller names it: a
time-later fold), with Platt scaling (a one-feature logistic regression on the raw score, the default: few
positives in a calibration fold) or isotonic regression (scikit-learn's, kept as its step function). The JSON holds
the feature list, the parameters, the calibration, and the validation report (AUC, ECE, reliability table) of the
fit that produced it. Files of schema 1 (``LogisticPropensity``, written before ``centric propensity fit``
existed: the same standardised logistic form) still load, as a logistic model with Platt scaling.
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
LEGACY_SCHEMA_VERSION = 1
KIND = "propensity_model"
LEARNERS = ("logistic", "gbm")
CALIBRATIONS = ("platt", "isotonic")


def log_transform(x: np.ndarray, features: Sequence[str], log_features: Sequence[str]) -> np.ndarray:
    """Return a float copy of ``x`` with the ``log_features`` columns as ``log1p(max(x, 0))``."""
    x = np.asarray(x, dtype=np.float64).copy()
    for j, name in enumerate(features):
        if name in log_features:
            x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
    return x


@dataclass
class PropensityModel:
    """Calibrated propensity model; ``fit`` learns the ``*_`` attributes and returns ``self``."""

    features: Sequence[str]
    log_features: Sequence[str] = ()
    learner: str = "logistic"
    c: float = 0.05  # inverse L2 strength; 0.01-0.05 scored best on the CJ time split, 1.0 overfits
    seed: int = 0
    calibration: str = "platt"
    profile_features: bool = False  # schema-1 files read their features from profile columns, not from history
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    coef_: np.ndarray | None = None
    booster_: str | None = None
    platt_: tuple[float, float] = (1.0, 0.0)
    isotonic_: tuple[list[float], list[float]] | None = None  # (raw-score knots, probabilities)
    report: dict[str, Any] = field(default_factory=dict)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return log_transform(x, self.features, self.log_features)

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

    def fit(self, x: np.ndarray, y: np.ndarray, calibrate: np.ndarray | float = 0.2) -> PropensityModel:
        """Fit the learner on the rows outside ``calibrate`` and the calibration on the rows in it; return ``self``.

        ``calibrate`` is a boolean mask of the calibration rows (callers pass a time-later fold), or a share: the
        last ``calibrate`` of the rows in their given order. Raises ``DataError`` when shapes disagree, the
        learner or calibration is unknown, or either part lacks accepted or declined rows.
        """
        if self.learner not in LEARNERS:
            raise DataError(f"learner must be one of {LEARNERS}, got {self.learner!r}")
        if self.calibration not in CALIBRATIONS:
            raise DataError(f"calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features) or len(y) != len(x):
            raise DataError(
                f"propensity fit: X must be (rows, {len(self.features)}), y (rows,); got {x.shape}, {y.shape}"
            )
        if isinstance(calibrate, float | int):
            cal = np.arange(len(y)) >= int(len(y) * (1 - float(calibrate)))
        else:
            cal = np.asarray(calibrate, dtype=bool)
        if len(np.unique(y[~cal])) < 2 or len(np.unique(y[cal])) < 2:
            raise DataError(
                "propensity fit: the training and the calibration slice both need accepted and declined exposures; "
                "give more history or a longer attribution window"
            )
        self._fit_learner(x[~cal], y[~cal])
        raw = self.raw_score(x[cal])
        self.platt_ = platt(raw, y[cal])
        self.isotonic_ = isotonic(raw, y[cal]) if self.calibration == "isotonic" else None
        return self

    def _fit_learner(self, x: np.ndarray, y: np.ndarray) -> None:
        tx = self._transform(x)
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
            ).fit(tx, y)
            self.booster_ = gbm.booster_.model_to_string()
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=self.c, max_iter=2000).fit(self._standard(x), y)
            self.coef_ = np.concatenate([lr.intercept_, lr.coef_[0]])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Return calibrated P(accept) for each row of ``x`` (columns in ``features`` order)."""
        return self.calibrate(self.raw_score(x))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw scores (isotonic when fitted so, Platt otherwise)."""
        if self.isotonic_ is not None:
            knots, values = self.isotonic_
            return np.interp(raw, knots, values)
        a, b = self.platt_
        return np.asarray(expit(a * np.asarray(raw) + b), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what :meth:`save` writes)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "learner": self.learner,
            "features": list(self.features),
            "log_features": [f for f in self.log_features if f in self.features],
            "c": self.c,
            "calibration": self.calibration,
            "mean": None if self.mean_ is None else self.mean_.tolist(),
            "scale": None if self.scale_ is None else self.scale_.tolist(),
            "coef": None if self.coef_ is None else self.coef_.tolist(),
            "booster": self.booster_,
            "platt": list(self.platt_),
            "isotonic": None if self.isotonic_ is None else [list(self.isotonic_[0]), list(self.isotonic_[1])],
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
        if data.get("schema_version") == LEGACY_SCHEMA_VERSION and data.get("kind") == "logistic_propensity":
            return cls._from_legacy(data, path)
        if data.get("schema_version") != SCHEMA_VERSION or data.get("kind") != KIND:
            raise ArtifactError(
                f"{path}: not a propensity model of schema version {SCHEMA_VERSION}; "
                "refit with `centric propensity fit`"
            )
        model = cls(
            data["features"],
            data["log_features"],
            data["learner"],
            data.get("c", 0.05),
            calibration=data.get("calibration", "platt"),
        )
        model.mean_ = np.asarray(data["mean"], dtype=np.float64)
        model.scale_ = np.asarray(data["scale"], dtype=np.float64)
        model.coef_ = None if data["coef"] is None else np.asarray(data["coef"], dtype=np.float64)
        model.booster_ = data.get("booster")
        model.platt_ = (float(data["platt"][0]), float(data["platt"][1]))
        iso = data.get("isotonic")
        model.isotonic_ = None if iso is None else ([float(v) for v in iso[0]], [float(v) for v in iso[1]])
        model.report = data.get("report", {})
        return model

    @classmethod
    def _from_legacy(cls, data: dict[str, Any], path: Path) -> PropensityModel:
        """A schema-1 ``LogisticPropensity`` file: the same log1p → standardise → logistic → Platt form."""
        if data.get("coef") is None:
            raise ArtifactError(f"{path}: not a fitted propensity model; refit with `centric propensity fit`")
        model = cls(data["features"], data.get("log_features", ()), "logistic", profile_features=True)
        model.coef_, model.mean_, model.scale_ = (
            np.asarray(data[k], dtype=np.float64) for k in ("coef", "mean", "scale")
        )
        model.platt_ = (float(data["platt"][0]), float(data["platt"][1]))
        model.report = {"calibration": data.get("calibration", {}), "source": "schema 1 file"}
        return model


def isotonic(raw: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Return the knots ``(raw scores, probabilities)`` of an isotonic fit of ``y`` on ``raw`` (scikit-learn)."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(np.asarray(raw), y)
    return [float(v) for v in fitted.X_thresholds_], [float(v) for v in fitted.y_thresholds_]


def platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return ``(a, b)`` of Platt scaling, P = sigmoid(a·raw + b), by (nearly unpenalised) logistic regression."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(raw)[:, None], y)
    return float(fitted.coef_[0][0]), float(fitted.intercept_[0])
