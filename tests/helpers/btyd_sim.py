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


def to_transactions(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, *, end: str, seed: int = 0):
    """Return purchase lines (``customer_id`` ``c0``…, ``item_id``, ``timestamp`` UTC, ``amount``, ``quantity``,
    ``price``) of customers summarised in days, their calibration ending on day ``end`` (ISO date).

    The first purchase is ``T`` days before ``end``, the last repeat one ``t_x`` days after the first, the others
    uniform in between (how a Poisson process places them given their count).
    """
    import polars as pl

    rng = np.random.default_rng(seed)
    last_day = np.datetime64(end)
    first = last_day - np.round(T).astype("timedelta64[D]")
    counts = x.astype(np.int64)
    owner = np.repeat(np.arange(x.size), counts)
    offsets = rng.uniform(0, 1, owner.size) * t_x[owner]
    offsets[(np.cumsum(counts) - 1)[counts > 0]] = t_x[counts > 0]
    customer = np.concatenate([np.arange(x.size), owner])
    days = np.concatenate([first, first[owner] + np.round(offsets).astype("timedelta64[D]")])
    amount = rng.gamma(4.0, 5.0, customer.size)
    return pl.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "item_id": "i1",
            "timestamp": pl.Series(days.astype("datetime64[us]")).dt.replace_time_zone("UTC"),
            "amount": amount,
            "quantity": 1.0,
            "price": amount,
        }
    )
