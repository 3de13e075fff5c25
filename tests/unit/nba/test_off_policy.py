"""Off-policy estimates on a simulation where the candidate policy's true value is known."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.exceptions import DataError
from recsys.nba.off_policy import estimate


def _logged(seed: int, n: int = 3000) -> tuple[np.ndarray, ...]:
    """3 offers per context; logging is epsilon-greedy (eps 0.3) on a noisy score; the candidate is greedy on truth."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(2, 12, (n, 3))
    noisy = truth + rng.normal(0, 0.05, (n, 3))
    greedy = noisy.argmax(1)
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), greedy] += 0.7
    action = (rng.random(n)[:, None] > probs.cumsum(1)).sum(1)
    reward = (rng.random(n) < truth[np.arange(n), action]).astype(float)
    best = truth.argmax(1)
    p_new = (action == best).astype(float)
    q = truth + rng.normal(0, 0.02, (n, 3))  # a good but imperfect reward model
    return (
        reward,
        probs[np.arange(n), action],
        p_new,
        q[np.arange(n), action],
        q[np.arange(n), best],
        truth[np.arange(n), best].mean(),
    )


def test_the_intervals_cover_the_true_value_of_a_different_policy_most_of_the_time() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0}
    for seed in range(20):
        reward, p_log, p_new, q_logged, q_new, true_value = _logged(seed)
        for e in estimate(reward, p_log, p_new, q_logged, q_new, n_boot=200, seed=seed):
            covered[e.name] += e.low <= true_value <= e.high
    assert all(c >= 16 for c in covered.values()), covered


def test_a_logged_probability_of_zero_is_refused() -> None:
    with pytest.raises(DataError, match=r"in \(0, 1\]"):
        estimate(np.ones(2), np.asarray([0.5, 0.0]), np.ones(2))
