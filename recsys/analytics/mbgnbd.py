"""MBG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison of models for customer base
analysis") by maximum likelihood.

Like BG/NBD, but a customer may also drop out right after the *first* purchase (with the same probability p as
after every repeat purchase). So a customer without repeat purchases is not assumed alive: their P(alive) falls as
the time since their only purchase grows, which BG/NBD cannot say.

Likelihood (per customer, all x >= 0)::

    L = B(a, b+x+1)/B(a, b) · Γ(r+x) α^r / Γ(r) · [ (α+T)^-(r+x) + a/(b+x) · (α+t_x)^-(r+x) ]

evaluated in log space with an analytic gradient; fitted like :mod:`recsys.analytics.bgnbd` (log parameters,
L-BFGS-B, times rescaled to [0, 1], identical rows compressed into weights). The hypergeometric terms are used in
their Euler-transformed form, whose parameters stay small when x is large (frequent shoppers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from recsys.analytics.bgnbd import ArrayLike, _check, compress
from recsys.exceptions import DataError


def _log_terms(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the log-likelihood and the two log terms (alive at T; dropped out after the last purchase)."""
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + 1) - betaln(a, b) + np.logaddexp(a3, a4)
    return ll, a3, a4


def loglik_terms(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return the per-customer log-likelihood for ``params = (r, alpha, a, b)``."""
    r, alpha, a, b = params
    return _log_terms(r, alpha, a, b, x, t_x, T)[0]


def _objective(
    theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Negative mean weighted log-likelihood and its gradient with respect to the log parameters."""
    r, alpha, a, b = np.exp(theta)
    ll, a3, a4 = _log_terms(r, alpha, a, b, x, t_x, T)
    lse = np.logaddexp(a3, a4)
    w3, w4 = np.exp(a3 - lse), np.exp(a4 - lse)
    dr = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    dalpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    psi_ab, psi_abx1 = digamma(a + b), digamma(a + b + x + 1)
    da = psi_ab - psi_abx1 + w4 / a
    db = digamma(b + x + 1) - digamma(b) + psi_ab - psi_abx1 - w4 / (b + x)
    total = w.sum()
    grad = np.array([w @ dr * r, w @ dalpha * alpha, w @ da * a, w @ db * b]) / total
    return -float(w @ ll) / total, -grad


@dataclass
class ModifiedBetaGeoModel:
    """MBG/NBD model. ``fit`` learns ``params_`` = (r, alpha, a, b) and ``loglik_`` (total log-likelihood)."""

    name: ClassVar[str] = "mbgnbd"
    label: ClassVar[str] = "MBG/NBD"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    max_iter: int = 500
    init: tuple[float, ...] | None = None  # (r, alpha, a, b) to start from, e.g. an earlier fit (warm start)

    def _starts(self, scale: float) -> list[np.ndarray]:
        # The usual all-ones start and one with a small dropout rate; a given ``init`` first
        starts = [np.zeros(4), np.log([0.5, 0.5, 0.5, 5.0])]
        if self.init is not None:
            r, alpha, a, b = self.init
            starts.insert(0, np.clip(np.log([r, alpha / scale, a, b]), -12.0, 12.0))
        return starts

    def fit(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None
    ) -> ModifiedBetaGeoModel:
        """Fit by maximum likelihood and return ``self``; raises ``DataError`` on invalid input or no convergence."""
        x, t_x, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        _check(x, t_x, T_)
        x, t_x, T_, w = compress(x, t_x, T_, weights)
        if float(np.max(T_, initial=0.0)) <= 0:
            raise DataError(
                "MBG/NBD needs customers observed for some time: every customer first bought on the "
                "calibration end day (T = 0); choose a later --calibration-end"
            )
        scale = float(T_.max())
        best = None
        for start in self._starts(scale):
            res = minimize(
                _objective,
                start,
                args=(x, t_x / scale, T_ / scale, w),
                jac=True,
                method="L-BFGS-B",
                bounds=[(-12.0, 12.0)] * 4,
                options={"maxiter": self.max_iter, "ftol": 1e-14, "gtol": 1e-9},
            )
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
        if best is None:
            raise DataError("MBG/NBD fit did not converge (non-finite likelihood); check frequency/recency/T")
        r, alpha, a, b = np.exp(best.x)
        self.params_ = np.array([r, alpha * scale, a, b])
        self.loglik_ = float(loglik_terms(self.params_, x, t_x, T_) @ w)
        self.n_customers_ = int(w.sum())
        return self

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> ModifiedBetaGeoModel:
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
        """Return P(alive | x, t_x, T), below 1 for one-time buyers too (falls with T)."""
        r, alpha, a, b = self.params_
        x, t_x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T_) - np.log(alpha + t_x))
        return 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700)))

    def conditional_expected(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Return E[purchases in the next ``t`` | x, t_x, T]."""
        r, alpha, a, b = self.params_
        t, x, t_x, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, frequency, recency, T)))
        z = t / (alpha + T_ + t)
        # ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+1; a+b+x; z) = (1-z)^(a-1) · 2F1(a+b-r, a-1; a+b+x; z) (Euler)
        tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - r, a - 1, a + b + x, z)
        return (a + b + x) / (a - 1) * (1.0 - tail) * self.p_alive(x, t_x, T_)

    def expected(self, t: ArrayLike) -> np.ndarray:
        """Return the unconditional E[X(t)] (repeat purchases) for a customer observed from time 0."""
        r, alpha, a, b = self.params_
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - r, a - 1, a + b, z)
        return b / (a - 1) * (1.0 - tail)
