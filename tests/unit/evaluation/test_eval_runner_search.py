"""Runner and hyperparameter search with small in-memory models (no implicit needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys.evaluation.runner import EvalData, evaluate_model, prepare
from recsys.evaluation.search import candidates, search
from recsys.splits import temporal_split
from tests.helpers.fake_models import ScoreTable

START = datetime(2024, 1, 1, tzinfo=UTC)


def _lines(seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = 4000
    customer = rng.integers(0, 50, n)
    # Each customer mostly buys "their" 5 items, so personal history predicts the future.
    item = (customer * 3 + rng.integers(0, 5, n)) % 40
    # ... and sometimes something new, so there are explore items in the test window too.
    item = np.where(rng.random(n) < 0.2, rng.integers(40, 120, n), item)
    return pl.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "item_id": [f"i{i}" for i in item],
            "timestamp": [START + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 90, n)],
            "quantity": np.ones(n),
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


def _buy_again(data: EvalData) -> ScoreTable:
    return ScoreTable(data.train.matrix.toarray())


def _popularity(data: EvalData) -> ScoreTable:
    pop = np.asarray(data.train.matrix.sum(axis=0)).ravel()
    return ScoreTable(np.tile(pop, (data.train.matrix.shape[0], 1)))


def _oracle(data: EvalData) -> ScoreTable:
    return ScoreTable(data.truth.toarray())


@pytest.fixture(scope="module")
def plan():
    return temporal_split(_lines(), test_days=20)


def test_prepare_builds_truth_on_train_ids(plan) -> None:
    data = prepare(plan.final)
    assert data.truth.shape == data.train.matrix.shape
    assert data.customers.size == data.stats["scored_customers"] > 0
    # Time-decayed inputs are measured back from the split's cutoff, never from a test-period timestamp.
    assert data.now.isoformat() == plan.final.stats["cutoff"]
    assert data.recent.shape == data.train.shape and data.recent.nnz == data.train.nnz


def test_runner_reports_metrics_and_timings_and_ranks_models(plan) -> None:
    data = prepare(plan.final)
    oracle = evaluate_model(_oracle, data)
    personal = evaluate_model(_buy_again, data)
    popular = evaluate_model(_popularity, data)
    assert oracle["hit_rate@20"] == pytest.approx(1.0)
    assert personal["ndcg@10"] > popular["ndcg@10"]
    assert personal["repeat_recall@10"] > popular["repeat_recall@10"]
    for key in ("fit_seconds", "recommend_seconds", "coverage@10", "novelty@10", "explore_recall@10", "map@5"):
        assert key in personal and personal[key] >= 0
    assert all(k == k.lower() for k in personal)


def test_candidates_start_with_defaults_and_respect_limits() -> None:
    space = {"factors": [64, 32, 128], "regularization": [0.01, 0.1]}
    grid = candidates(space, mode="grid", max_trials=10)
    assert len(grid) == 6 and grid[0] == {"factors": 64, "regularization": 0.01}
    drawn = candidates(space, mode="random", max_trials=4, seed=1)
    assert len(drawn) == 4 and drawn[0] == grid[0]
    assert len({tuple(sorted(d.items())) for d in drawn}) == 4


def test_search_picks_best_params_on_tuning_split_only(plan) -> None:
    tuning = prepare(plan.tuning)
    seen_max: list[datetime] = []

    def build(params: dict):
        def factory(data: EvalData):
            seen_max.append(data.transactions["timestamp"].max())
            return _buy_again(data) if params["personal"] else _popularity(data)

        return factory

    result = search(build, {"personal": [False, True]}, tuning, time_budget=60)
    assert result.best_params == {"personal": True}
    assert len(result.trials) == 2 and not result.stopped_by_budget
    # The search never saw a line from the validation window or later.
    assert max(seen_max) < datetime.fromisoformat(plan.tuning.stats["validation_start"])


def test_search_stops_when_time_budget_is_spent(plan) -> None:
    tuning = prepare(plan.tuning)
    result = search(lambda p: _popularity, {"x": [1, 2, 3]}, tuning, time_budget=0.0)
    assert len(result.trials) == 1 and result.stopped_by_budget


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
