"""Models at scale: work done a slice at a time (bounded memory) gives the results of one pass over everyone."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.matrix import build_matrix
from recsys.models import HybridRecommender, hybrid, ranker, tune_blend
from tests.unit.models.test_learned_hybrid import _alternating, _fit


def test_scores_in_slices_equal_the_scores_of_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _alternating(n_customers=30)
    whole, _ = _fit(lines)
    monkeypatch.setattr(ranker, "PREDICT_ROWS", 7)  # many slices, one cut inside most customers' candidates
    sliced, _ = _fit(lines)
    assert whole.booster_text_ and whole.scores_.nnz > 7 * 3
    assert (whole.scores_ != sliced.scores_).nnz == 0


def test_blend_tuning_in_batches_equals_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _alternating(n_customers=40)
    matrix = build_matrix(lines, weighting="count")
    rows = np.arange(matrix.matrix.shape[0])
    truth = sp.csr_matrix((matrix.matrix > 0).astype(np.float32))

    def trials() -> list:
        model = HybridRecommender(explore="popularity").fit(matrix)
        return [(t.repeat_weight, t.repeat_slope, t.score) for t in tune_blend(model, rows, truth)]

    monkeypatch.setattr(hybrid, "TUNE_BATCH", 1 << 20)
    once = trials()
    monkeypatch.setattr(hybrid, "TUNE_BATCH", 3)  # 40 customers in 14 batches, the last a short one
    assert trials() == once and len(once) == 21
