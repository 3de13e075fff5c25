"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") by maximum likelihood.

The likelihood is evaluated in log space (``gammaln``, ``betaln``, ``logaddexp``) with an analytic gradient, so
a million customers fit in seconds. Parameters are optimised as logs with L-BFGS-B (bounded), times are rescaled
to [0, 1] during the fit (``r``, ``a``, ``b`` do not depend on the time scale; ``alpha`` scales with it), and
identical ``(x, t_x, T)`` rows are compressed into weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from recsys.exceptions import DataError

ArrayLike = np.ndarray | float


def _check(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    if not (len(frequency) == len(recency) == len(T)) or len(T) == 0:
        raise DataError("BG/NBD needs non-empty frequency, recency and T arrays of equal length")
    if (frequency < 0).any() or (recency < 0).any() or (recency > T + 1e-9).any():
        raise DataError("BG/NBD input must have frequency >= 0 and 0 <= recency <= T for every customer")
    if ((frequency == 0) & (recency > 0)).any():
        raise DataError("BG/NBD input has customers with frequency 0 but recency > 0 (recency must be 0)")


def compress(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Return unique ``(x, t_x, T)`` rows and their summed weights (the likelihood only needs the patterns)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    stacked = np.column_stack([x, t_x, T])
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return uniq[:, 0], uniq[:, 1], uniq[:, 2], np.bincount(inverse.ravel(), weights=w)


def sample_customers(weights: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Return how many of a seeded random sample of ``n`` customers fall on each compressed pattern.

    Without replacement when the weights are whole customer counts (the usual case), else proportional draws.
    """
    rng = np.random.default_rng(seed)
    if np.all(weights == np.round(weights)) and weights.sum() >= n:
        return rng.multivariate_hypergeometric(weights.astype(np.int64), n).astype(float)
    return rng.multinomial(n, weights / weights.sum()).astype(float)


def loglik_terms(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return the per-customer log-likelihood for ``params = (r, alpha, a, b)``."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + np.logaddexp(a3, a4)


def _objective(
    theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Negative mean weighted log-likelihood and its gradient with respect to the log parameters."""
    r, alpha, a, b = np.exp(theta)
    a3 = -(r + x) * np.log(alpha + T)
    pos = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(pos, np.log(a) - np.log(np.where(pos, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x), -np.inf)
    lse = np.logaddexp(a3, a4)
    w3, w4 = np.exp(a3 - lse), np.exp(a4 - lse)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b) + lse
    dr = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    dalpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    da = psi_ab - psi_abx + w4 / a
    db = digamma(b + x) - digamma(b) + psi_ab - psi_abx - np.where(pos, w4 / np.where(pos, b + x - 1, 1.0), 0.0)
    total = w.sum()
    grad = np.array([w @ dr * r, w @ dalpha * alpha, w @ da * a, w @ db * b]) / total
    return -float(w @ ll) / total, -grad


def fit_by_likelihood(
    label: str,
    objective: Callable[..., tuple[float, np.ndarray]],
    loglik: Callable[..., np.ndarray],
    starts: Callable[[float], list[np.ndarray]],
    summary: tuple[ArrayLike, ArrayLike, ArrayLike],
    weights: np.ndarray | None,
    max_iter: int,
) -> tuple[np.ndarray, float, int]:
    """Fit (r, alpha, a, b) of a BG/NBD-family model by maximum likelihood: L-BFGS-B on log parameters from each of
    ``starts(scale)``, with time scaled by the longest ``T``; return ``(params, total loglik, customers)``.

    ``objective(log_params, x, t_x, T, w)`` returns the negative log-likelihood and its gradient; ``loglik(params, x,
    t_x, T)`` the per-customer terms. Raises ``DataError`` on invalid input, when every ``T`` is 0, or when no start
    reaches a finite likelihood. Shared by BG/NBD and MBG/NBD, which differ only in their likelihood.
    """
    x, t_x, T_ = (np.asarray(v, dtype=float) for v in summary)
    _check(x, t_x, T_)
    x, t_x, T_, w = compress(x, t_x, T_, weights)
    if float(np.max(T_, initial=0.0)) <= 0:
        raise DataError(
            f"{label} needs customers observed for some time: every customer first bought on the "
            "calibration end day (T = 0); choose a later --calibration-end"
        )
    scale = float(T_.max())
    best = None
    for start in starts(scale):
        res = minimize(
            objective,
            start,
            args=(x, t_x / scale, T_ / scale, w),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-12.0, 12.0)] * 4,
            options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-9},
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise DataError(f"{label} fit did not converge (non-finite likelihood); check frequency/recency/T")
    r, alpha, a, b = np.exp(best.x)
    params = np.array([r, alpha * scale, a, b])
    return params, float(loglik(params, x, t_x, T_) @ w), int(w.sum())


@dataclass
class BetaGeoModel:
    """BG/NBD model. ``fit`` learns ``params_`` = (r, alpha, a, b) and ``loglik_`` (total log-likelihood)."""

    name: ClassVar[str] = "bgnbd"
    label: ClassVar[str] = "BG/NBD"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    max_iter: int = 500
    init: tuple[float, ...] | None = None  # (r, alpha, a, b) to start from, e.g. an earlier fit (warm start)
    # the likelihood (negative mean with its gradient; per-customer terms): what a model of the family changes
    _nll: ClassVar[Callable[..., tuple[float, np.ndarray]]] = staticmethod(_objective)
    _loglik: ClassVar[Callable[..., np.ndarray]] = staticmethod(loglik_terms)

    def _starts(self, scale: float) -> list[np.ndarray]:
        # The usual all-ones start and one with a small dropout rate; a given ``init`` first
        starts = [np.zeros(4), np.log([0.5, 0.5, 0.5, 5.0])]
        if self.init is not None:
            r, alpha, a, b = self.init
            starts.insert(0, np.clip(np.log([r, alpha / scale, a, b]), -12.0, 12.0))
        return starts

    def fit(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> Self:
        """Fit by maximum likelihood and return ``self``; raises ``DataError`` on invalid input or no convergence."""
        self.params_, self.loglik_, self.n_customers_ = fit_by_likelihood(
            self.label,
            type(self)._nll,
            type(self)._loglik,
            self._starts,
            (frequency, recency, T),
            weights,
            self.max_iter,
        )
        return self

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> Self:
        """Return a model with the given parameters (no fitting)."""
        model = cls()
        model.params_ = np.array([r, alpha, a, b], dtype=float)
        model.loglik_ = float("nan")
        return model

    def to_dict(self) -> dict[str, float]:
        """Return ``{"r", "alpha", "a", "b", "loglik"}`` (JSON-able)."""
        r, alpha, a, b = (float(v) for v in self.params_)
        return {"r": r, "alpha": alpha, "a": a, "b": b, "loglik": self.loglik_}

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Return P(alive | x, t_x, T); 1 for customers without repeat purchases (BG/NBD assumption)."""
        r, alpha, a, b = self.params_
        x, t_x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T_) - np.log(alpha + t_x))
            )
        return np.where(x > 0, 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700))), 1.0)

    def conditional_expected(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Return E[purchases in the next ``t`` | x, t_x, T] (FHL 2005, eq. 10)."""
        r, alpha, a, b = self.params_
        t, x, t_x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, frequency, recency, T)))
        z = t / (alpha + T_ + t)
        log_ratio = (r + x) * (np.log(alpha + T_) - np.log(alpha + T_ + t))
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        numerator = (a + b + x - 1) / (a - 1) * (1.0 - np.exp(log_ratio) * hyp)
        return numerator * self.p_alive(x, t_x, T_)

    def expected(self, t: ArrayLike) -> np.ndarray:
        """Return the unconditional E[X(t)] for a customer observed from time 0 (FHL 2005, eq. 9)."""
        r, alpha, a, b = self.params_
        t = np.asarray(t, dtype=float)
        return (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))

    def prob_purchases(self, x: int, t: ArrayLike) -> np.ndarray:
        """Return P(X(t) = x) for a new customer over a period of length ``t`` (FHL 2005, eq. 8)."""
        r, alpha, a, b = self.params_
        t = np.asarray(t, dtype=float)
        log_p0 = np.log(alpha / (alpha + t))
        log_p1 = np.log(t / (alpha + t)) if x > 0 else np.zeros_like(t)
        first = np.exp(
            betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r) - gammaln(x + 1) + r * log_p0 + x * log_p1
        )
        if x == 0:
            return first
        j = np.arange(x)
        terms = np.exp(gammaln(r + j) - gammaln(r) - gammaln(j + 1) + np.multiply.outer(log_p1, j)).sum(axis=-1)
        second = np.exp(betaln(a + 1, b + x - 1) - betaln(a, b)) * (1.0 - np.exp(r * log_p0) * terms)
        return first + second
