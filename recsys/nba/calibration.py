"""How well predicted probabilities match observed rates: Brier score, expected calibration error, reliability.

ECE binning (documented, fixed): ``bins`` **equal-mass** bins of the predictions (quantile edges; ties keep a
bin whole), ``ECE = Σ_b (n_b / n) · |mean p̂_b − observed rate_b|``. Equal-mass bins are used because acceptance
probabilities crowd near zero: equal-width bins would put almost every row into the first bin and hide the
miscalibration of the rest. Propensity fits report 10 bins.

The ECE of a finite sample is biased upwards: even perfectly calibrated predictions show a positive ECE, because
each bin's observed rate is noisy. :func:`ece_noise_floor` gives that floor for the same predictions (the mean
ECE when outcomes are drawn from the predictions themselves), so a reported ECE can be read against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 10


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))


def _ece(p: np.ndarray, y: np.ndarray, which: np.ndarray) -> float:
    counts = np.bincount(which)
    used = counts > 0
    mean_p = np.bincount(which, weights=p)[used] / counts[used]
    rate = np.bincount(which, weights=y)[used] / counts[used]
    return float(np.sum(counts[used] / len(p) * np.abs(mean_p - rate)))


def calibration_table(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """Return ``brier``, ``ece`` (equal-mass ``bins``, see the module docstring) and the reliability ``bins``."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    which = _bins(p, bins)
    rows = [
        {"rows": int(m.sum()), "mean_predicted": float(p[m].mean()), "observed_rate": float(y[m].mean())}
        for m in (which == b for b in np.unique(which))
    ]
    return {"brier": float(np.mean((p - y) ** 2)), "ece": _ece(p, y, which), "bins": rows}


def ece_noise_floor(p: np.ndarray, bins: int = ECE_BINS, draws: int = 200, seed: int = 0) -> float:
    """Return the mean ECE of ``p`` against outcomes drawn from ``p`` itself (seeded): the ECE that perfectly
    calibrated predictions of this sample size still show."""
    p = np.asarray(p, dtype=np.float64)
    which = _bins(p, bins)
    rng = np.random.default_rng(seed)
    return float(np.mean([_ece(p, (rng.random(len(p)) < p).astype(np.float64), which) for _ in range(draws)]))
