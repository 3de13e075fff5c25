"""P(accept | customer, offer): a calibrated logistic regression where response data exists, a prior otherwise.

The regression is written with numpy + ``scipy.optimize`` (L-BFGS on the L2-penalised log-loss,
analytic gradient) on standardised features; no extra dependency. Calibration is Platt scaling fitted
on a held-out slice of the training rows (the last ``calibration_share`` in the given order, which
callers sort by time), so the reported probabilities are usable as expectations in arbitration.

The prior (no response data): ``logit p = logit(base_rate) + 2·(affinity − 0.5) + 1·(p_alive − 0.5)``,
``base_rate`` from the offer (by kind, see ``offers.BASE_RATES``). It is monotone in affinity and in
P(alive) and equals the base rate for an average customer (affinity 0.5, p_alive 0.5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

from recsys.exceptions import ArtifactError, DataError

SCHEMA_VERSION = 1
PRIOR_AFFINITY_WEIGHT = 2.0
PRIOR_ALIVE_WEIGHT = 1.0


def prior_probability(base_rate: np.ndarray | float, affinity: np.ndarray, p_alive: np.ndarray) -> np.ndarray:
    """Return the documented prior P(accept); missing affinity/p_alive count as 0.5 (average)."""
    aff = np.nan_to_num(np.asarray(affinity, dtype=np.float64), nan=0.5)
    alive = np.nan_to_num(np.asarray(p_alive, dtype=np.float64), nan=0.5)
    base = np.clip(np.asarray(base_rate, dtype=np.float64), 1e-6, 1 - 1e-6)
    return expit(logit(base) + PRIOR_AFFINITY_WEIGHT * (aff - 0.5) + PRIOR_ALIVE_WEIGHT * (alive - 0.5))


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Return ``[bias, w...]`` minimising mean weighted log-loss + l2·|w|² (bias not penalised)."""
    n, d = x.shape
    xb = np.hstack([np.ones((n, 1)), x])
    sw = np.ones(n) if weights is None else weights
    sw = sw / sw.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ theta
        # log(1 + e^z) - y z, computed stably
        value = float(sw @ (np.logaddexp(0.0, z) - y * z)) + l2 * float(theta[1:] @ theta[1:])
        grad = xb.T @ (sw * (expit(z) - y))
        grad[1:] += 2 * l2 * theta[1:]
        return value, grad

    start = np.zeros(d + 1)
    start[0] = logit(np.clip(float(sw @ y), 1e-4, 1 - 1e-4))
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(result.x)


@dataclass
class LogisticPropensity:
    """Calibrated logistic propensity model. ``fit`` learns ``coef_``, ``mean_``, ``scale_``, ``platt_``.

    ``log_features`` are transformed with log1p (heavy-tailed money and counts) before standardising.
    """

    features: Sequence[str]
    log_features: Sequence[str] = ()
    l2: float = 1e-3
    calibration_share: float = 0.2
    coef_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    platt_: tuple[float, float] = (1.0, 0.0)
    calibration_: dict[str, Any] = field(default_factory=dict)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).copy()
        for j, name in enumerate(self.features):
            if name in self.log_features:
                x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
        return x

    def _logits(self, x: np.ndarray) -> np.ndarray:
        if self.coef_ is None or self.mean_ is None or self.scale_ is None:
            raise ArtifactError("propensity model is not fitted; call fit() or load() first")
        z = (self._transform(x) - self.mean_) / self.scale_
        z = np.where(np.isnan(z), 0.0, z)  # a missing feature counts as the training mean
        return self.coef_[0] + z @ self.coef_[1:]

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticPropensity:
        """Fit on rows in time order (the last ``calibration_share`` calibrates); returns ``self``.

        Raises ``DataError`` if a slice has only one class or shapes disagree.
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features) or len(y) != len(x):
            raise DataError(
                f"propensity fit: X must be (rows, {len(self.features)}) and y (rows,), got {x.shape} and {y.shape}"
            )
        cut = int(len(y) * (1 - self.calibration_share))
        fit_y, cal_y = y[:cut], y[cut:]
        if len(np.unique(fit_y)) < 2 or len(np.unique(cal_y)) < 2:
            raise DataError(
                "propensity fit: both the training and the calibration slice need accepted and declined rows"
            )
        tx = self._transform(x)
        self.mean_ = np.nanmean(tx[:cut], axis=0)
        self.scale_ = np.nanstd(tx[:cut], axis=0)
        self.scale_[~(self.scale_ > 0)] = 1.0
        self.platt_ = (1.0, 0.0)
        z = np.nan_to_num((tx[:cut] - self.mean_) / self.scale_)
        self.coef_ = _fit_logistic(z, fit_y, self.l2)
        raw = self._logits(x[cut:])
        a_b = _fit_logistic(raw[:, None], cal_y, 0.0)
        self.platt_ = (float(a_b[1]), float(a_b[0]))
        self.calibration_ = calibration_table(self.predict_proba(x[cut:]), cal_y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Return calibrated P(accept) for each row of ``x`` (columns in ``features`` order)."""
        a, b = self.platt_
        return expit(a * self._logits(x) + b)

    def save(self, path: Path) -> None:
        """Write the model as JSON (schema version, features, parameters, calibration report)."""
        Path(path).write_text(
            json.dumps(
                {
                    "schema_version": SCHEMA_VERSION,
                    "kind": "logistic_propensity",
                    "features": list(self.features),
                    "log_features": list(self.log_features),
                    "l2": self.l2,
                    "coef": self.coef_.tolist() if self.coef_ is not None else None,
                    "mean": self.mean_.tolist() if self.mean_ is not None else None,
                    "scale": self.scale_.tolist() if self.scale_ is not None else None,
                    "platt": list(self.platt_),
                    "calibration": self.calibration_,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, path: Path) -> LogisticPropensity:
        """Read a model saved by :meth:`save`; raises ``ArtifactError`` on a missing file or unknown schema."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: cannot read propensity model: {exc}") from None
        if (
            data.get("schema_version") != SCHEMA_VERSION
            or data.get("kind") != "logistic_propensity"
            or data.get("coef") is None
        ):
            raise ArtifactError(f"{path}: not a fitted propensity model of schema version {SCHEMA_VERSION}")
        model = cls(data["features"], data["log_features"], data["l2"])
        model.coef_, model.mean_, model.scale_ = (
            np.asarray(data[k], dtype=np.float64) for k in ("coef", "mean", "scale")
        )
        model.platt_ = (float(data["platt"][0]), float(data["platt"][1]))
        model.calibration_ = data.get("calibration", {})
        return model


def calibration_table(p: np.ndarray, y: np.ndarray, bins: int = 5) -> dict[str, Any]:
    """Return Brier score, expected calibration error and a reliability table over quantile bins of ``p``."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    rows, ece = [], 0.0
    for b in np.unique(which):
        mask = which == b
        mean_p, rate = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.mean() * abs(mean_p - rate)
        rows.append({"rows": int(mask.sum()), "mean_predicted": mean_p, "observed_rate": rate})
    return {"brier": float(np.mean((p - y) ** 2)), "ece": float(ece), "bins": rows}
