"""Simulate customers from the BG/NBD process itself (for tests and the scale benchmark)."""

from __future__ import annotations

import numpy as np


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, *, T_max: float, seed: int = 0, T_min: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(frequency, recency, T)`` of ``n`` customers with observation lengths uniform in [T_min, T_max].

    Each customer draws λ ~ Gamma(r, 1/α) and p ~ Beta(a, b); purchases follow a Poisson(λ) process and after
    every repeat purchase the customer drops out with probability p. Vectorised: one round per purchase across
    all customers still active (a few dozen rounds).
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(T_max / 4 if T_min is None else T_min, T_max, n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, idx.size) / np.maximum(lam[idx], 1e-12)
        bought = now[idx] <= T[idx]
        done = idx[~bought]
        active[done] = False
        hit = idx[bought]
        x[hit] += 1
        t_x[hit] = now[hit]
        # dropout happens right after a purchase with probability p
        dies = hit[rng.random(hit.size) < p[hit]]
        active[dies] = False
    return x.astype(float), t_x, T
