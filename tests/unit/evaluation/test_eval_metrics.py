"""Ranking metrics against small examples computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.evaluation.metrics import (
    catalog_metrics,
    evaluate_top_k,
    hit_matrix,
    per_customer_metrics,
    ranking_metrics,
    split_repeat_explore,
)

L3 = 1 / math.log2(3)  # discount of rank 2
L4 = 1 / math.log2(4)  # discount of rank 3


def _csr(rows: list[set[int]], n_items: int = 6) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for r, items in enumerate(rows):
        dense[r, list(items)] = 1
    return sp.csr_matrix(dense)


TRUTH = _csr([{1, 3}, {0}, set()])
TOP = np.array([[1, 2, 3], [4, 0, 5], [0, 1, 2]])


def test_hit_matrix_marks_relevant_positions_and_ignores_padding() -> None:
    top = np.array([[1, -1, 3], [4, 0, -1], [0, 1, 2]])
    assert hit_matrix(top, TRUTH).tolist() == [[True, False, True], [False, True, False], [False, False, False]]


def test_metrics_at_2_match_hand_computation() -> None:
    m = ranking_metrics(TOP, TRUTH, ks=(2,))
    # user 0: hit at rank 1 of 2 relevant; user 1: hit at rank 2 of 1 relevant; user 2 has no truth: ignored.
    assert m["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["hit_rate@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx((1 / (1 + L3) + L3 / 1) / 2)
    assert m["map@2"] == pytest.approx((1 / 2 + (1 / 2) / 1) / 2)


def test_metrics_at_3_match_hand_computation() -> None:
    m = ranking_metrics(TOP, TRUTH, ks=(3,))
    assert m["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["recall@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx(((1 + L4) / (1 + L3) + L3) / 2)
    assert m["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 2) / 2)


def test_k_beyond_list_width_counts_as_misses() -> None:
    m = ranking_metrics(TOP[:, :1], TRUTH, ks=(5,))
    assert m["precision@5"] == pytest.approx((1 / 5 + 0) / 2)
    assert m["recall@5"] == pytest.approx((1 / 2 + 0) / 2)


def test_no_relevant_items_gives_nan_not_zero() -> None:
    m = ranking_metrics(TOP, _csr([set(), set(), set()]), ks=(2,))
    assert math.isnan(m["recall@2"])


def test_repeat_and_explore_split_by_training_history() -> None:
    history = _csr([{1, 5}, {2}, {0}])
    repeat, explore = split_repeat_explore(TRUTH, history)
    assert repeat.toarray().nonzero() == (np.array([0]), np.array([1]))
    assert sorted(zip(*explore.toarray().nonzero())) == [(0, 3), (1, 0)]
    m = evaluate_top_k(TOP, TRUTH, history, ks=(2, 3))
    assert m["repeat_recall@2"] == pytest.approx(1.0)  # only user 0 has a repeat item, found at rank 1
    assert m["explore_recall@2"] == pytest.approx((0 + 1) / 2)  # user 0's item 3 is at rank 3
    assert m["explore_recall@3"] == pytest.approx(1.0)
    assert m["explore_ndcg@3"] == pytest.approx((L4 + L3) / 2)
    assert m["repeat_customers"] == 1 and m["explore_customers"] == 2 and m["customers"] == 2


def test_coverage_and_novelty() -> None:
    popularity = np.array([4, 2, 1, 0, 0, 0])  # customers who bought each item, out of 4
    top = np.array([[0, 1], [0, 2], [3, -1]])
    m = catalog_metrics(top, popularity, n_customers=4, ks=(1, 2))
    assert m["coverage@1"] == pytest.approx(2 / 6)  # items 0 and 3
    assert m["coverage@2"] == pytest.approx(4 / 6)
    # self-information: item0 log2(4/4)=0, item1 1 bit, item2 2 bits, item3 (never bought: floored at 1/4) 2 bits
    assert m["novelty@1"] == pytest.approx((0 + 0 + 2) / 3)
    assert m["novelty@2"] == pytest.approx((0 + 1 + 0 + 2 + 2) / 5)


def test_row_count_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        hit_matrix(TOP[:2], TRUTH)


# --- Review regressions (2026-11-30): duplicates and explicit zeros in lists and truth ------------------------------


# ---- 2. a duplicated item in one list is counted as two hits -------------------------------------------------------
def test_duplicate_item_in_a_list_is_one_hit() -> None:
    truth = sp.csr_matrix(np.array([[1, 0, 0]], np.float32))
    metrics = ranking_metrics(np.array([[0, 0]]), truth, ks=(2,))
    assert metrics["recall@2"] <= 1.0, metrics
    assert metrics["precision@2"] == 0.5, metrics
    assert metrics["ndcg@2"] <= 1.0, metrics


# ---- 3. a non-canonical truth (duplicate entries) inflates the recall / NDCG / MAP denominators --------------------
def test_duplicate_truth_entries_do_not_count_as_more_relevant_items() -> None:
    # One relevant item (0), stored twice, as COO → CSR without summing would leave it; hit_matrix handles this
    # case explicitly, the denominators do not.
    truth = sp.csr_matrix((np.array([1.0, 1.0], np.float32), np.array([0, 0]), np.array([0, 2])), shape=(1, 3))
    assert not truth.has_canonical_format
    metrics = ranking_metrics(np.array([[0, 1]]), truth, ks=(2,))
    assert metrics["recall@2"] == 1.0, metrics
    assert metrics["ndcg@2"] == 1.0, metrics
    assert metrics["map@2"] == 1.0, metrics


# ---- 3b. a stored explicit zero counts as relevant (the docstring says "any non-zero = relevant") -------------------
def test_explicit_zero_in_truth_is_not_relevant() -> None:
    truth = sp.csr_matrix((np.array([1.0, 0.0], np.float32), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    metrics = ranking_metrics(np.array([[1, 0]]), truth, ks=(2,))
    # Only item 0 is relevant: one hit in two slots, all of the one relevant item recalled.
    assert metrics["precision@2"] == 0.5, metrics
    assert metrics["recall@2"] == 1.0, metrics


def test_next_basket_ndcg_takes_the_ideal_over_the_whole_basket() -> None:
    # user 0's basket has 2 scorable items and 3 it could not score (unseen in training): 5 in all
    sizes = np.array([5, 1, 0])
    m = ranking_metrics(TOP, TRUTH, ks=(2,), basket_sizes=sizes)
    ideal_of_5 = 1 + L3 + L4 + 1 / math.log2(5) + 1 / math.log2(6)
    assert m["ndcg_basket@2"] == pytest.approx((1 / ideal_of_5 + L3 / 1) / 2)
    assert m["ndcg@2"] == pytest.approx((1 / (1 + L3) + L3 / 1) / 2)  # the usual convention is unchanged
    assert m["recall_basket@2"] == pytest.approx((1 / 5 + 1) / 2)
    assert m["recall@2"] == pytest.approx((1 / 2 + 1) / 2)


def test_basket_sizes_below_the_scorable_items_count_the_scorable_items() -> None:
    as_given = ranking_metrics(TOP, TRUTH, ks=(3,), basket_sizes=np.array([1, 1, 0]))
    assert as_given["ndcg_basket@3"] == pytest.approx(as_given["ndcg@3"])  # at k ≥ |truth| the two agree
    assert as_given["recall_basket@3"] == pytest.approx(as_given["recall@3"])


def test_per_customer_figures_average_to_the_reported_ones() -> None:
    sizes = np.array([4, 2, 0])
    per = per_customer_metrics(TOP, TRUTH, 2, basket_sizes=sizes)
    m = ranking_metrics(TOP, TRUTH, ks=(2,), basket_sizes=sizes)
    assert len(per["ndcg"]) == 2  # the user without truth is left out, as in the means
    for key in ("ndcg", "recall", "ndcg_basket", "recall_basket"):
        assert per[key].mean() == pytest.approx(m[f"{key}@2"])


def test_basket_sizes_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="basket_sizes"):
        ranking_metrics(TOP, TRUTH, ks=(2,), basket_sizes=np.array([1, 2]))
