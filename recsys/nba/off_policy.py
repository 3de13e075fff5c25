"""Off-policy value estimates of a candidate policy from logged impressions: IPS, SNIPS and doubly robust.

Each logged row is one decision: the logging policy showed action ``a`` with probability ``p_log`` (logged with
the impression) and observed reward ``r``. The candidate gives, for the same context, the probability
``p_new`` of choosing the logged action, and (for DR) a reward model's prediction ``q_logged`` for the logged
action and ``q_new`` = Σ_a π_new(a|x)·q̂(x, a), its expected reward under the candidate.

* IPS    = mean(w·r), w = p_new / p_log;
* SNIPS  = Σ w·r / Σ w;
* DR     = mean(q_new + w·(r − q_logged)).

Intervals are percentile bootstrap intervals (seeded) that resample whole **groups** of rows when the caller
names them (``centric report policy``: the customer, whose impressions share one customer's propensity to redeem
and one slate's draw, so they are not independent), single rows otherwise. These are the standard formulas of
Dudík et al. (2011) and Swaminathan & Joachims (2015), as implemented by Open Bandit Pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.exceptions import DataError


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval."""

    name: str
    value: float
    low: float
    high: float


def _check(p_log: np.ndarray, *arrays: np.ndarray) -> None:
    if np.any(~(p_log > 0)) or np.any(p_log > 1):
        raise DataError("logged propensities must be in (0, 1]; a row logged with probability 0 cannot be reweighted")
    if any(len(a) != len(p_log) for a in arrays):
        raise DataError("logged rows and candidate probabilities must have the same length")


def _resampler(n: int, groups: np.ndarray | None) -> Callable[[np.random.Generator], np.ndarray]:
    """Return ``draw(rng) -> row indices`` of one bootstrap resample: as many groups as there are, with replacement,
    each with all its rows (one row per group without ``groups``: the plain row bootstrap)."""
    codes = None if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    if codes is None or codes.max(initial=-1) + 1 == n:  # one row per group: the row bootstrap (same draws)
        return lambda rng: rng.integers(0, n, n)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def draw(rng: np.random.Generator) -> np.ndarray:
        g = rng.integers(0, len(sizes), len(sizes))
        lengths = sizes[g]
        offsets = np.repeat(starts[g] - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        return order[offsets]

    return draw


def _point(kind: str, w: np.ndarray, r: np.ndarray, q_logged: np.ndarray, q_new: np.ndarray) -> float:
    if kind == "ips":
        return float(np.mean(w * r))
    if kind == "snips":
        return float(np.sum(w * r) / np.sum(w)) if np.sum(w) > 0 else 0.0
    return float(np.mean(q_new + w * (r - q_logged)))


def estimate(
    reward: np.ndarray,
    p_log: np.ndarray,
    p_new: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_new: np.ndarray | None = None,
    *,
    n_boot: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> list[Estimate]:
    """Return IPS, SNIPS and (with a reward model) DR estimates with (1 − alpha) bootstrap intervals.

    ``groups`` (one label per row) makes the bootstrap resample whole groups, the independent units (without it,
    every row is its own group). Raises ``DataError`` for a logged probability outside (0, 1] or arrays of
    different lengths.
    """
    r, pl_, pn = (np.asarray(a, dtype=np.float64) for a in (reward, p_log, p_new))
    ql = np.zeros_like(r) if q_logged is None else np.asarray(q_logged, dtype=np.float64)
    qn = np.zeros_like(r) if q_new is None else np.asarray(q_new, dtype=np.float64)
    _check(pl_, r, pn, ql, qn, *(() if groups is None else (np.asarray(groups),)))
    w = pn / pl_
    resample = _resampler(len(r), groups)
    kinds = ["ips", "snips"] + (["dr"] if q_logged is not None and q_new is not None else [])
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, len(kinds)))
    for b in range(n_boot):  # one resample at a time: memory stays O(rows) for millions of logged rows
        i = resample(rng)
        boots[b] = [_point(kind, w[i], r[i], ql[i], qn[i]) for kind in kinds]
    out = []
    for j, kind in enumerate(kinds):
        low, high = np.quantile(boots[:, j], [alpha / 2, 1 - alpha / 2])
        out.append(Estimate(kind, _point(kind, w, r, ql, qn), float(low), float(high)))
    return out
