"""Focused behaviour of single models: buy-again ordering, hybrid blending, ALS fold-in, filters, top-k."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.evaluation.metrics import ranking_metrics
from recsys.models import (
    ALSRecommender,
    BuyAgainRecommender,
    HybridRecommender,
    ItemFilter,
    PopularInCategoryRecommender,
    load_recommender,
    repeat_categories,
    top_k,
    tune_blend,
)
from recsys.models.hybrid import repeat_ratio


def test_buy_again_ranks_by_recency_weighted_frequency_and_only_bought_items() -> None:
    counts = sp.csr_matrix(np.array([[5, 1, 2, 0], [0, 0, 0, 1]], np.float32))
    # Item 2 was bought twice but recently, item 0 five times long ago: the decayed weights decide.
    recent = sp.csr_matrix(np.array([[0.4, 0.1, 1.6, 0], [0, 0, 0, 1]], np.float32))
    ids, scores = BuyAgainRecommender().fit(counts, recent=recent).recommend(np.array([0, 1]), 4)
    assert ids[0].tolist() == [2, 0, 1, -1]
    assert ids[1].tolist() == [3, -1, -1, -1]
    assert np.isneginf(scores[1, 1:]).all()


def test_buy_again_without_recency_uses_counts_and_breaks_ties_by_count() -> None:
    counts = sp.csr_matrix(np.array([[1, 3, 2]], np.float32))
    recent = sp.csr_matrix(np.array([[1.0, 1.0, 1.0]], np.float32))
    assert BuyAgainRecommender().fit(counts).recommend([0], 3)[0][0].tolist() == [1, 2, 0]
    assert BuyAgainRecommender().fit(counts, recent=recent).recommend([0], 3)[0][0].tolist() == [1, 2, 0]


def _two_cliques(n: int = 60) -> sp.csr_matrix:
    """Customers 0..n/2 buy items 0-4, the others items 5-9; every customer misses one item of their clique."""
    rows, cols = [], []
    for customer in range(n):
        base = 0 if customer < n // 2 else 5
        for item in range(base, base + 5):
            if item != base + customer % 5:
                rows.append(customer)
                cols.append(item)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, 10))


def test_hybrid_weight_one_is_buy_again_and_weight_zero_puts_new_items_first() -> None:
    counts = _two_cliques()
    params = {
        "explore": "als",
        "explore_params": {"factors": 4, "iterations": 10},
        "repeat_slope": 0.0,
        "neighbour_weight": 0.0,
    }
    repeat_only = HybridRecommender(repeat_weight=1.0, **params).fit(counts)
    explore_first = HybridRecommender(repeat_weight=0.0, **params).fit(counts)
    bought = set(counts[0].indices.tolist())
    top_repeat = repeat_only.recommend([0], 4)[0][0]
    assert set(top_repeat.tolist()) == bought
    top_explore = explore_first.recommend([0], 1)[0][0]
    assert top_explore[0] not in bought
    # The clique's missing item is the collaborative suggestion, not an item of the other clique.
    assert top_explore[0] == 0


def test_hybrid_personalised_weight_grows_with_repetitiveness() -> None:
    counts = sp.csr_matrix(np.array([[5, 5, 0, 0], [1, 1, 1, 1]], np.float32))
    model = HybridRecommender(repeat_weight=0.5, repeat_slope=1.0, explore_params={"neighbours": 1}).fit(counts)
    ratio = repeat_ratio(counts)
    assert ratio[0] == pytest.approx(0.8) and ratio[1] == pytest.approx(0.0)
    weights = model.customer_weights(np.array([0, 1]))
    assert weights[0] > 0.5 > weights[1]


def test_tune_blend_picks_the_best_weight_on_validation() -> None:
    counts = _two_cliques()
    model = HybridRecommender(explore_params={"neighbours": 10}, repeat_candidates=5, explore_candidates=5).fit(counts)
    # Validation purchases are exactly each customer's missing clique item: new items must win.
    missing = [(0 if c < 30 else 5) + c % 5 for c in range(60)]
    truth = sp.csr_matrix((np.ones(60, np.float32), (np.arange(60), missing)), shape=(60, 10))
    trials = tune_blend(model, np.arange(60), truth, k=1, weights=(0.1, 0.9), slopes=(0.0,))
    assert trials[0].repeat_weight == 0.1 and trials[0].score > trials[-1].score
    assert model.repeat_weight == 0.1


def test_als_fold_in_recommends_the_clique_of_the_given_basket(tmp_path: Path) -> None:
    counts = _two_cliques()
    model = ALSRecommender(factors=4, iterations=15).fit(counts)
    model.save(tmp_path)
    loaded = load_recommender(tmp_path / "als.json")
    basket = ["5", "6", "7", "unknown-id"]
    ranked = loaded.recommend_from_items(basket, k=3, exclude=["9"])
    ids = [item for item, _ in ranked]
    assert ids[0] == "8"  # the one clique item not in the basket and not excluded
    assert "9" not in ids and not set(ids) & set(basket)
    assert all(isinstance(score, float) for _, score in ranked)
    assert ranked == model.recommend_from_items(basket, k=3, exclude=["9"])


def test_fold_in_keeps_bought_items_of_repeat_categories() -> None:
    counts = _two_cliques()
    model = ALSRecommender(factors=4, iterations=15).fit(counts)
    repeat = np.zeros(10, bool)
    repeat[5] = True
    model.item_filter = ItemFilter(np.ones(10, bool), repeat, np.zeros(10, bool))
    ids = [item for item, _ in model.recommend_from_items(["5", "6", "7"], k=10)]
    assert "5" in ids and "6" not in ids and "7" not in ids


def test_popular_in_category_prefers_the_customers_categories() -> None:
    counts = sp.csr_matrix(np.array([[3, 0, 0, 0], [0, 0, 1, 0], [1, 1, 1, 1], [0, 1, 0, 1]], np.float32))
    model = PopularInCategoryRecommender(top_categories=1)
    model.item_categories = np.array([0, 0, 1, 1])
    ids, _ = model.fit(counts).recommend([0, 1], 4)
    assert set(ids[0][ids[0] >= 0].tolist()) == {0, 1}
    assert set(ids[1][ids[1] >= 0].tolist()) == {2, 3}


def test_top_k_breaks_ties_by_lower_index_and_pads() -> None:
    ids, scores = top_k(np.array([[1.0, 3.0, 3.0, -np.inf]], np.float32), 5)
    assert ids.tolist() == [[1, 2, 0, -1, -1]]
    assert np.isneginf(scores[0, 3:]).all()


def test_repeat_categories_follow_the_share_of_repeat_buyers() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for customer in range(10):
        # milk: every buyer buys on two orders; sofa: one order each.
        rows += [
            (f"c{customer}", "milk1", f"o{customer}a", t0),
            (f"c{customer}", "milk2", f"o{customer}b", t0 + timedelta(days=7)),
        ]
        rows.append((f"c{customer}", "sofa1", f"o{customer}a", t0))
    tx = pl.DataFrame(
        rows, schema=[Columns.customer_id, Columns.item_id, Columns.order_id, Columns.timestamp], orient="row"
    )
    catalog = pl.DataFrame(
        {Columns.item_id: ["milk1", "milk2", "sofa1"], Columns.category: ["dairy", "dairy", "furniture"]}
    )
    table = repeat_categories(tx, catalog)
    flags = dict(zip(table[Columns.category], table["repeat_category"], strict=True))
    assert flags == {"dairy": True, "furniture": False}
    assert repeat_categories(tx, catalog, min_buyers=11)["repeat_category"].sum() == 0


def test_item_filter_from_catalog_maps_flags_to_indices() -> None:
    from recsys.ids import IdMap

    items = IdMap(("a", "b", "c"))
    catalog = pl.DataFrame({Columns.item_id: ["a", "b", "zzz"], Columns.in_stock: [True, False, False]})
    flt = ItemFilter.from_catalog(items, catalog, repeat_items=["c", "nope"], exclude=["a"])
    assert flt.in_stock.tolist() == [True, False, True]
    assert flt.repeat_category.tolist() == [False, False, True]
    assert flt.blocked(3).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="covers 3 items"):
        flt.blocked(4)


def test_hybrid_fast_recommend_matches_the_dense_reference_path() -> None:
    from recsys.models import Recommender

    rng = np.random.default_rng(5)
    counts = sp.csr_matrix(rng.poisson(0.5, size=(30, 40)).astype(np.float32))
    model = HybridRecommender(explore_params={"neighbours": 5}, repeat_candidates=15, explore_candidates=15)
    model.fit(counts, recent=counts.multiply(0.7).tocsr())
    repeat = rng.random(40) < 0.5
    flt = ItemFilter(rng.random(40) < 0.9, repeat, rng.random(40) < 0.1)
    for kwargs in ({}, {"item_filter": flt}, {"exclude_bought": True}):
        fast = model.recommend(np.arange(30), 12, **kwargs)
        dense = Recommender.recommend(model, np.arange(30), 12, **kwargs)
        np.testing.assert_array_equal(fast[0], dense[0])
        np.testing.assert_allclose(fast[1], dense[1])


def test_top_k_equals_a_full_stable_sort_even_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.integers(0, 4, size=(5, 30)).astype(np.float32)
        scores[rng.random(scores.shape) < 0.2] = -np.inf
        k = int(rng.integers(1, 35))
        ids, _ = top_k(scores, k)
        reference = np.lexsort((np.broadcast_to(np.arange(30), (5, 30)), -scores), axis=1)[:, :k]
        reference = np.where(np.isfinite(np.take_along_axis(scores, reference, axis=1)), reference, -1)
        np.testing.assert_array_equal(ids[:, : min(k, 30)], reference)


def test_sparse_top_k_agrees_with_dense_top_k() -> None:
    from recsys.models.hybrid import sparse_top_k

    matrix = sp.random(6, 20, density=0.3, random_state=3, format="csr", dtype=np.float32)
    matrix.sort_indices()
    dense = matrix.toarray()
    top_ids, top_scores = sparse_top_k(matrix, matrix.data, 4)
    reference_ids, reference_scores = top_k(np.where(dense > 0, dense, -np.inf).astype(np.float32), 4)
    np.testing.assert_array_equal(top_ids, reference_ids)
    np.testing.assert_allclose(top_scores, reference_scores)


# ---- 4. tune_blend ranks ties differently from HybridRecommender.recommend ------------------------------------------
def test_tune_blend_scores_the_ranking_that_recommend_serves() -> None:
    from recsys.models import HybridRecommender, tune_blend

    # Customer 0 bought item 1; item 0 is the most popular item. At repeat_weight 0.5 both lists' best candidates
    # (each scaled to 1.0) blend to exactly 0.5: recommend breaks the tie by item id (item 0 first),
    # tune_blend by candidate position (repeat list first → item 1).
    counts = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [1, 0, 1]], np.float32))
    model = HybridRecommender(
        explore="popularity", repeat_weight=0.5, repeat_slope=0.0, neighbour_weight=0.0, item_prior=0.0
    )
    model.fit(counts)
    validation = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32))
    served, _ = model.recommend(np.array([0]), 1)
    served_ndcg = ranking_metrics(served, validation[[0]], (1,))["ndcg@1"]
    trials = tune_blend(model, np.array([0]), validation, k=1, weights=(0.5,), slopes=(0.0,))
    assert trials[0].score == served_ndcg, (trials[0].score, served_ndcg, served.tolist())


def test_tune_blend_in_small_batches_gives_the_trials_of_one_batch() -> None:
    # Scoring every tuning customer at once needs customers × items dense scores (186 GB at 1M × 50k): tune_blend
    # builds the candidate lists batch by batch, and the result must not depend on the batch size.
    counts = _two_cliques()
    truth = sp.csr_matrix((np.ones(60, np.float32), (np.arange(60), [(c * 7) % 10 for c in range(60)])), (60, 10))

    sizes: list[int] = []

    def trials(batch_size: int) -> list:
        model = HybridRecommender(explore_params={"neighbours": 10}, repeat_candidates=5, explore_candidates=5)
        model.fit(counts)
        lists = model.candidate_lists
        model.candidate_lists = lambda batch: sizes.append(batch.size) or lists(batch)  # type: ignore[method-assign]
        return tune_blend(model, np.arange(60), truth, k=3, batch_size=batch_size)

    small = trials(7)
    assert max(sizes) == 7 and sum(sizes) == 60  # every customer scored once, never more than 7 at a time
    assert small == trials(1_000)
    assert len(small) == 21
