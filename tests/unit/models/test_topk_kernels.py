"""The scoring kernels of batch recommend: the fast top-k, candidate ranking, norm pruning and threaded batches give
the results of the plain ways."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.models import ALSRecommender, HybridRecommender
from recsys.models.factor_topk import NormOrder, unbought_top_k
from recsys.models.topk import (
    best_finite_or_zero,
    rank_by_score_then_id,
    rank_by_score_then_id_reference,
    top_k,
    top_k_reference,
)


def _rows(rng: np.random.Generator, kind: int, n: int, m: int) -> np.ndarray:
    if kind == 0:  # continuous scores
        return rng.standard_normal((n, m)).astype(np.float32)
    if kind == 1:  # heavy ties (counts, popularity)
        return rng.integers(0, 4, (n, m)).astype(np.float32)
    if kind == 2:  # sparse candidates, some rows with fewer than k of them
        scores = rng.integers(0, 4, (n, m)).astype(np.float32)
        scores[scores == 0] = -np.inf
        scores[: n // 2, : m - int(rng.integers(0, 200))] = -np.inf
        return scores
    if kind == 3:  # float64 with +inf
        scores = rng.standard_normal((n, m))
        scores[rng.random((n, m)) < 0.01] = np.inf
        return scores
    scores = rng.standard_normal((n, 2 * m)).astype(np.float32)[:, ::2]  # a strided view, with 0.0 and -0.0
    scores[scores > 1] = 0.0
    scores[scores < -1] = -0.0
    return scores


@pytest.mark.parametrize("kind", range(5))
def test_fast_top_k_returns_exactly_what_a_full_argpartition_and_sort_returns(kind: int) -> None:
    rng = np.random.default_rng(kind)
    for _ in range(25):
        n, m, k = int(rng.integers(0, 30)), int(rng.integers(1024, 4000)), int(rng.integers(1, 130))
        scores = _rows(rng, kind, n, m)
        ids, best = top_k(scores, k)
        reference = top_k_reference(scores, k)
        np.testing.assert_array_equal(ids, reference[0])
        np.testing.assert_array_equal(best, reference[1])


def test_top_k_with_labels_returns_item_ids_and_breaks_ties_by_the_lower_id() -> None:
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 3, (20, 3000)).astype(np.float32)
    labels = rng.permutation(10_000)[:3000]
    ids, best = top_k(scores, 50, labels=labels)
    reference = rank_by_score_then_id_reference(np.broadcast_to(labels, scores.shape), scores, 50)
    np.testing.assert_array_equal(ids, reference[0])
    np.testing.assert_array_equal(best, reference[1])
    assert set(ids.ravel()) <= set(labels)


def test_a_row_with_a_nan_is_ranked_as_the_plain_sort_ranks_it() -> None:
    scores = np.random.default_rng(1).standard_normal((4, 2048)).astype(np.float32)
    scores[1, :5] = np.nan
    np.testing.assert_array_equal(top_k(scores, 10)[0], top_k_reference(scores, 10)[0])


def test_candidate_ranking_matches_a_lexsort_by_score_then_item_id() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        n, c, k = int(rng.integers(0, 40)), int(rng.integers(1, 300)), int(rng.integers(1, 40))
        ids = rng.permutation(100_000)[: n * c].reshape(n, c).astype(np.int32)
        scores = (rng.integers(0, 5, (n, c)) / 4).astype(np.float32)
        scores[rng.random((n, c)) < 0.2] = -np.inf
        ids[~np.isfinite(scores) & (rng.random((n, c)) < 0.5)] = -1
        fast = rank_by_score_then_id(ids, scores, k)
        reference = rank_by_score_then_id_reference(ids, scores, k)
        np.testing.assert_array_equal(fast[0], reference[0])
        np.testing.assert_array_equal(fast[1], reference[1])


def test_best_finite_or_zero_is_the_max_with_non_finite_scores_as_zero() -> None:
    scores = np.array(
        [[-3.0, -1.0, -2.0], [-3.0, -np.inf, -2.0], [1.0, np.inf, 2.0], [-np.inf, -np.inf, -np.inf], [0.5, 4.0, 1.0]],
        np.float32,
    )
    expected = np.max(np.where(np.isfinite(scores), scores, 0.0), axis=1)
    np.testing.assert_array_equal(best_finite_or_zero(scores), expected)


def _zipf_factors(rng: np.random.Generator, users: int, items: int) -> tuple[np.ndarray, np.ndarray]:
    """Factors whose item norms fall with popularity rank, as ALS's do on Zipf items."""
    item = rng.standard_normal((items, 16)).astype(np.float32)
    item *= (1.0 / np.sqrt(1.0 + np.arange(items)))[rng.permutation(items), None].astype(np.float32)
    return rng.standard_normal((users, 16)).astype(np.float32), item


def test_norm_pruning_finds_the_top_k_of_the_full_product_without_the_bought_items() -> None:
    rng = np.random.default_rng(11)
    users, items = _zipf_factors(rng, 300, 9000)
    bought = sp.random(300, 9000, density=0.01, format="csr", random_state=4, dtype=np.float32)
    bought.sort_indices()
    also = rng.integers(-1, 9000, (300, 7))
    found = unbought_top_k(users, NormOrder.of(items), bought, 40, also)
    assert found is not None
    full = users @ items.T
    best = full.max(axis=1)
    seen = np.take_along_axis(full, np.maximum(also, 0), axis=1)
    full[np.repeat(np.arange(300), np.diff(bought.indptr)), bought.indices] = -np.inf
    ids, scores = top_k(full, 40)
    np.testing.assert_array_equal(found.ids, ids)
    np.testing.assert_allclose(found.scores, scores, rtol=1e-5)
    np.testing.assert_allclose(found.best, best, rtol=1e-5)
    np.testing.assert_allclose(found.also, seen, rtol=1e-4, atol=1e-6)


def test_norm_pruning_steps_aside_for_a_small_catalog() -> None:
    rng = np.random.default_rng(2)
    users, items = _zipf_factors(rng, 10, 3000)
    empty = sp.csr_matrix((10, 3000), dtype=np.float32)
    assert unbought_top_k(users, NormOrder.of(items), empty, 20, np.zeros((10, 1), np.int64)) is None


def test_hybrid_recommend_on_two_threads_equals_one_thread_and_the_dense_explore_path() -> None:
    counts = sp.random(1500, 5000, density=0.004, format="csr", random_state=1, dtype=np.float32)
    counts.data = np.ceil(counts.data * 3)
    model = HybridRecommender(explore="als", explore_params={"factors": 8, "iterations": 3})
    model.fit(counts, recent=counts)
    customers = np.arange(1500)
    one = model.recommend(customers, 20, batch_size=256)
    two = model.recommend(customers, 20, batch_size=256, threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert isinstance(model.explore_, ALSRecommender)
    model.explore_.top_unbought = lambda *_args: None  # type: ignore[method-assign]  # the dense path instead
    dense = model.recommend(customers, 20, batch_size=256)
    assert (one[0] == dense[0]).mean() > 0.999  # the same lists up to float32 rounding of near-ties
    np.testing.assert_allclose(one[1], dense[1], rtol=1e-4)
