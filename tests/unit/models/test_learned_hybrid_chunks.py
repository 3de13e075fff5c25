"""The learned hybrid scores every customer by ranges of customers, with the scores of one pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

import recsys.models.ranker as ranker
from recsys.matrix import build_matrix
from recsys.models import LearnedHybridRecommender

START = datetime(2024, 1, 1, tzinfo=UTC)


def _shop(customers: int = 90, items: int = 40, seed: int = 3) -> pl.DataFrame:
    """Customers with uneven histories over a small catalog, some trending items (every basket a few days apart)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        for b in range(int(rng.integers(2, 9))):
            when = START + timedelta(days=int(3 * b + rng.integers(0, 40)), hours=c % 24)
            for item in rng.choice(items, int(rng.integers(1, 5)), replace=False, p=None):
                rows.append(
                    {
                        "customer_id": f"c{c:03d}",
                        "item_id": f"i{int(item):02d}",
                        "order_id": f"c{c}-{b}",
                        "timestamp": when,
                        "quantity": 1.0,
                    }
                )
    return pl.DataFrame(rows)


@pytest.mark.parametrize("chunk", [7, 40])
def test_scoring_by_customer_ranges_gives_the_scores_of_one_pass(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    lines = _shop()
    matrix = build_matrix(lines, weighting="count")
    params = {"rounds": 20, "min_data_in_leaf": 5, "target_baskets": 3, "early_stopping_rounds": None}
    whole = LearnedHybridRecommender(**params).fit(matrix, transactions=lines)
    monkeypatch.setattr(ranker, "SERVE_CUSTOMERS", chunk)  # 90 customers: 13 or 3 ranges
    ranged = LearnedHybridRecommender(**params).fit(matrix, transactions=lines)
    assert whole.booster_text_ == ranged.booster_text_
    a, b = whole.scores_.tocsr(), ranged.scores_.tocsr()
    a.sort_indices()
    b.sort_indices()
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
    customers = np.arange(matrix.shape[0])
    np.testing.assert_array_equal(whole.recommend(customers, 10)[0], ranged.recommend(customers, 10)[0])
