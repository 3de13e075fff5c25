"""The learned hybrid at scale: scoring every candidate in slices gives the scores of one pass."""

from __future__ import annotations

import pytest

from recsys.models import ranker
from tests.unit.models.test_learned_hybrid import _alternating, _fit


def test_scores_in_slices_equal_the_scores_of_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _alternating(n_customers=30)
    whole, _ = _fit(lines)
    monkeypatch.setattr(ranker, "PREDICT_ROWS", 7)  # many slices, one cut inside most customers' candidates
    sliced, _ = _fit(lines)
    assert whole.booster_text_ and whole.scores_.nnz > 7 * 3
    assert (whole.scores_ != sliced.scores_).nnz == 0
