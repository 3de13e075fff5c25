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

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from recsys.analytics.bgnbd import ArrayLike, BetaGeoModel


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
class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD model. ``fit`` learns ``params_`` = (r, alpha, a, b) and ``loglik_`` (total log-likelihood).

    Fitting, starts and (de)serialisation are BG/NBD's; the likelihood and the predictions are its own.
    """

    name: ClassVar[str] = "mbgnbd"
    label: ClassVar[str] = "MBG/NBD"
    _nll: ClassVar[Callable[..., tuple[float, np.ndarray]]] = staticmethod(_objective)
    _loglik: ClassVar[Callable[..., np.ndarray]] = staticmethod(loglik_terms)

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
