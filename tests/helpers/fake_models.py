"""Stand-in recommenders for evaluation tests: no training, just a fixed score per customer and item."""

from __future__ import annotations

import numpy as np


class ScoreTable:
    """Recommends items in the order of a score matrix (customers × items), highest first; ties keep item order."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def recommend(self, customer_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the top ``k`` item indices and their scores for each customer in ``customer_idx``."""
        s = self.scores[customer_idx]
        ids = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return ids, np.take_along_axis(s, ids, axis=1)
