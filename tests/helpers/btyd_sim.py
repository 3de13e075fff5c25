"""Simulate customers of the three purchase models over a calibration period and a holdout (tests only).

Each function returns ``(x, t_x, T, holdout)``: repeat purchases, time of the last one and length of the
calibration period, and the number of purchases in the ``holdout`` time units after it. Vectorised: one round per
purchase over all customers still buying.
"""

from __future__ import annotations

import numpy as np


def _run(
    lam: np.ndarray, T: np.ndarray, horizon: float, alive_until: np.ndarray | None, p: np.ndarray | None, rng
) -> tuple[np.ndarray, ...]:
    """Poisson(λ) purchases after time 0 until ``T + horizon``, stopping at ``alive_until`` (Pareto/NBD lifetimes)
    or, with probability ``p``, right after a purchase (BG/NBD-type dropout)."""
    n = lam.size
    x, t_x, hold = np.zeros(n), np.zeros(n), np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    end = T + horizon if alive_until is None else np.minimum(T + horizon, alive_until)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, idx.size) / np.maximum(lam[idx], 1e-12)
        bought = now[idx] <= end[idx]
        active[idx[~bought]] = False
        hit = idx[bought]
        in_cal = hit[now[hit] <= T[hit]]
        x[in_cal] += 1
        t_x[in_cal] = now[in_cal]
        hold[hit[now[hit] > T[hit]]] += 1
        if p is not None:
            active[hit[rng.random(hit.size) < p[hit]]] = False
    return x, t_x, T, hold


def simulate_pnbd(
    n: int, r: float, alpha: float, s: float, beta: float, *, T_max: float, holdout: float, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Pareto/NBD customers: λ ~ Gamma(r, 1/α), μ ~ Gamma(s, 1/β), lifetime ~ Exp(μ); T uniform in [T_max/4, T_max]."""
    rng = np.random.default_rng(seed)
    lam, mu = rng.gamma(r, 1.0 / alpha, n), rng.gamma(s, 1.0 / beta, n)
    T = rng.uniform(T_max / 4, T_max, n)
    return _run(lam, T, holdout, rng.exponential(1.0, n) / mu, None, rng)


def simulate_mbgnbd(
    n: int, r: float, alpha: float, a: float, b: float, *, T_max: float, holdout: float, seed: int = 0
) -> tuple[np.ndarray, ...]:
    """MBG/NBD customers: like BG/NBD, plus a dropout with probability p right after the first purchase."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1.0 / alpha, n), rng.beta(a, b, n)
    T = rng.uniform(T_max / 4, T_max, n)
    dead_at_start = rng.random(n) < p
    x, t_x, T, hold = _run(np.where(dead_at_start, 0.0, lam), T, holdout, None, p, rng)
    return x, t_x, T, hold
