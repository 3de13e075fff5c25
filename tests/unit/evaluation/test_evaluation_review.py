"""Offline-evaluation regressions from a review (2026-11-30): each test pins one bug (fixed) on a tiny synthetic
input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.runner import prepare
from recsys.splits import temporal_split

START = datetime(2024, 1, 1, tzinfo=UTC)


def _frame(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """(customer, item, day offset from START) → a transactions frame."""
    return pl.DataFrame(
        {
            "customer_id": [c for c, _, _ in rows],
            "item_id": [i for _, i, _ in rows],
            "timestamp": [START + timedelta(days=d) for _, _, d in rows],
            "quantity": [1.0] * len(rows),
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


# ---- 1. the tuning split decays its train lines at the *test* cutoff, not at the validation start ------------------
def test_tuning_split_reference_time_is_the_validation_start_not_the_test_cutoff() -> None:
    rows = [("a", "x", d) for d in range(0, 100, 5)] + [("b", "y", d) for d in range(1, 100, 7)] + [("a", "y", 99)]
    plan = temporal_split(_frame(rows), test_days=10)
    newest = START + timedelta(days=99)
    cutoff = newest - timedelta(days=10)
    validation_start = cutoff - timedelta(days=10)
    tuning = prepare(plan.tuning)
    # The tuning train part ends before validation_start; decayed models ("recent", buy-again, trending, user-kNN,
    # the hybrid) must be weighted at that boundary, as the final split is weighted at its own cutoff.
    assert tuning.transactions["timestamp"].max() < validation_start
    assert tuning.now == validation_start, f"tuning decays at {tuning.now}, validation starts {validation_start}"


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


# ---- 5. was: the hybrid reported a half-life for its explore model that it never applied -------------------------
def test_hybrid_does_not_report_an_explore_half_life_it_cannot_apply() -> None:
    """Inside the hybrid the explore model sees the hybrid's matrix (buy-again's half-life). The evaluate job once
    copied user-kNN's own tuned half-life into ``explore_params``, where it had no effect, so results.json
    reported settings that never ran."""
    from training.jobs.evaluate import _tune_hybrid

    built = []

    def build(params):
        built.append(params)
        return lambda data: object()  # no blend: _tune_hybrid returns the parameters as built

    params, _ = _tune_hybrid(
        build,
        {
            "hybrid": {"explore": "user_knn"},
            "user_knn": {"k": 50, "half_life_days": 7.0},
            "buy_again": {"half_life_days": 90.0},
        },
        None,
        tuned={"user_knn", "buy_again"},
        metric="ndcg@10",
    )
    assert params["explore_params"] == {"k": 50} and params["half_life_days"] == 90.0
    assert built == [params]


# ---- 3b. a stored explicit zero counts as relevant (the docstring says "any non-zero = relevant") -------------------
def test_explicit_zero_in_truth_is_not_relevant() -> None:
    truth = sp.csr_matrix((np.array([1.0, 0.0], np.float32), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    metrics = ranking_metrics(np.array([[1, 0]]), truth, ks=(2,))
    # Only item 0 is relevant: one hit in two slots, all of the one relevant item recalled.
    assert metrics["precision@2"] == 0.5, metrics
    assert metrics["recall@2"] == 1.0, metrics
