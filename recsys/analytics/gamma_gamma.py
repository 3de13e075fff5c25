"""Gamma-Gamma model of spend per transaction (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value").

Fitted on customers with at least one repeat purchase. The model assumes spend is independent of purchase
frequency: :func:`independence_check` reports the Pearson correlation and warns when it is large.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from recsys.exceptions import DataError

CORRELATION_WARNING = 0.3  # |r| above which the independence assumption is doubtful


def independence_check(frequency: np.ndarray, monetary: np.ndarray, threshold: float = CORRELATION_WARNING) -> float:
    """Return the Pearson correlation of frequency and monetary value over repeat customers; warn if |r| > threshold."""
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary, dtype=float)
    keep = x > 0
    if keep.sum() < 3 or np.std(x[keep]) == 0 or np.std(m[keep]) == 0:
        return float("nan")
    corr = float(np.corrcoef(x[keep], m[keep])[0, 1])
    if abs(corr) > threshold:
        warnings.warn(
            f"frequency and monetary value are correlated (Pearson r = {corr:.2f}); "
            "the Gamma-Gamma independence assumption may not hold",
            stacklevel=2,
        )
    return corr


def _objective(theta: np.ndarray, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    p, q, g = np.exp(theta)
    px = p * x
    log_gmx = np.log(g + m * x)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_gmx
    )
    psi = digamma(px + q)
    dp = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_gmx)
    dq = psi - digamma(q) + np.log(g) - log_gmx
    dg = q / g - (px + q) / (g + m * x)
    total = w.sum()
    grad = np.array([w @ dp * p, w @ dq * q, w @ dg * g]) / total
    return -float(w @ ll) / total, -grad


@dataclass
class GammaGammaModel:
    """Gamma-Gamma spend model. ``fit`` learns ``params_`` = (p, q, gamma) and ``loglik_``."""

    max_iter: int = 500

    def fit(self, frequency: np.ndarray, monetary: np.ndarray, weights: np.ndarray | None = None) -> GammaGammaModel:
        """Fit on customers with frequency > 0 and monetary > 0 (others are ignored); return ``self``.

        Raises ``DataError`` when fewer than 3 such customers exist.
        """
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary, dtype=float)
        w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
        keep = (x > 0) & (m > 0)
        if keep.sum() < 3:
            raise DataError(
                f"Gamma-Gamma needs at least 3 customers with repeat purchases and spend > 0, got {int(keep.sum())}"
            )
        x, m, w = x[keep], m[keep], w[keep]
        self.correlation_ = independence_check(x, m)
        scale = float(np.average(m, weights=w))  # gamma scales with the currency unit; p, q do not
        res = minimize(
            _objective,
            np.zeros(3),
            args=(x, m / scale, w),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-12.0, 12.0)] * 3,
            options={"maxiter": self.max_iter, "ftol": 1e-14, "gtol": 1e-9},
        )
        if not np.isfinite(res.fun):
            raise DataError("Gamma-Gamma fit did not converge (non-finite likelihood)")
        p, q, g = np.exp(res.x)
        if q <= 1:
            # the population mean spend p*gamma/(q-1) does not exist; expected spends would come out negative
            raise DataError(
                f"Gamma-Gamma fit gave q = {q:.3f} <= 1 (spend too heavy-tailed for the model); "
                "using observed mean spend instead is safer"
            )
        self.params_ = np.array([p, q, g * scale])
        self.loglik_ = float(-res.fun * w.sum() - (w @ (np.log(scale) * np.ones_like(m))))
        self.n_customers_ = int(keep.sum())
        return self

    @classmethod
    def from_params(cls, p: float, q: float, gamma: float) -> GammaGammaModel:
        """Return a model with the given parameters (no fitting)."""
        model = cls()
        model.params_ = np.array([p, q, gamma], dtype=float)
        model.loglik_ = float("nan")
        model.correlation_ = float("nan")
        return model

    def to_dict(self) -> dict[str, float]:
        """Return ``{"p", "q", "gamma", "loglik", "correlation"}`` (JSON-able)."""
        p, q, g = (float(v) for v in self.params_)
        return {"p": p, "q": q, "gamma": g, "loglik": self.loglik_, "correlation": self.correlation_}

    def conditional_expected_spend(self, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
        """Return E[spend per transaction | x, mean spend]; the population mean p·γ/(q−1) when x = 0."""
        p, q, g = self.params_
        x, m = np.asarray(frequency, dtype=float), np.asarray(monetary, dtype=float)
        return p * (g + m * x) / (p * x + q - 1)

    def mean_spend(self) -> float:
        """Return the population mean spend per transaction p·γ/(q−1) (infinite when q <= 1)."""
        p, q, g = self.params_
        return float(p * g / (q - 1)) if q > 1 else float("inf")
