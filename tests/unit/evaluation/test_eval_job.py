"""The evaluate job: results document, tuning on validation only, refit on train+validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from recsys.evaluation.runner import EvalData
from tests.helpers.fake_models import ScoreTable
from training.jobs.evaluate import run_evaluate

START = datetime(2024, 1, 1, tzinfo=UTC)


def _lines(seed: int = 11, n: int = 5000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, 60, n)
    item = np.where(rng.random(n) < 0.7, (customer * 2 + rng.integers(0, 4, n)) % 50, rng.integers(0, 150, n))
    day = rng.integers(0, 100, n)
    return pl.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "item_id": [f"i{i}" for i in item],
            "timestamp": [START + timedelta(days=int(d)) for d in day],
            "quantity": np.ones(n),
            "order_id": [f"o{c}-{d}" for c, d in zip(customer, day)],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


def _registry(calls: list[tuple[str, dict, datetime]]) -> dict[str, Any]:
    def popularity(params: dict):
        def factory(data: EvalData):
            calls.append(("popularity", params, data.transactions["timestamp"].max()))
            pop = np.asarray(data.train.matrix.sum(axis=0)).ravel()
            return ScoreTable(np.tile(pop, (data.train.matrix.shape[0], 1)))

        return factory

    def mix(params: dict):
        """weight 0 = popularity, 1 = personal history: a stand-in for a tunable model."""

        def factory(data: EvalData):
            calls.append(("mix", params, data.transactions["timestamp"].max()))
            m = data.train.matrix.toarray()
            pop = m.sum(axis=0) / max(m.sum(), 1)
            personal = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
            w = params.get("weight", 0.0)
            return ScoreTable(w * personal + (1 - w) * pop)

        return factory

    return {"popularity": popularity, "mix": mix}


@pytest.mark.parametrize("protocol", ["temporal", "next-basket"])
def test_results_document_has_every_model_and_metric(protocol: str) -> None:
    results = run_evaluate(
        _lines(), protocol=protocol, models=["popularity", "mix"], test_days=14, registry=_registry([])
    )
    assert results["protocol"] == protocol
    assert set(results["models"]) == {"popularity", "mix"}
    for metrics in results["models"].values():
        for key in (
            "ndcg@10",
            "recall@10",
            "explore_recall@10",
            "repeat_recall@10",
            "fit_seconds",
            "map@20",
            "novelty@5",
        ):
            assert key in metrics
    assert results["data"]["final"]["scored_customers"] > 0
    json.dumps(results, allow_nan=False)  # NaN-free, JSON-able


def test_next_basket_figures_come_in_both_conventions_and_count_unseen_items() -> None:
    lines = _lines()
    last = lines.sort("timestamp").group_by("customer_id").agg(pl.col("order_id").last(), pl.col("timestamp").last())
    # one item nobody bought before joins every customer's last basket: it cannot be scored, but it is in the basket
    unseen = last.with_columns(pl.lit("brand_new").alias("item_id"), pl.lit(1.0).alias("quantity")).select(
        lines.columns
    )
    with_new = pl.concat([lines, unseen])
    plain = run_evaluate(lines, protocol="next-basket", models=["mix"], registry=_registry([]))
    results = run_evaluate(with_new, protocol="next-basket", models=["mix"], registry=_registry([]))
    m, before = results["models"]["mix"], plain["models"]["mix"]
    assert {"ndcg@10", "ndcg_basket@10", "recall_basket@10"} <= set(m) and "ndcg_basket@k" in results["conventions"]
    assert m["ndcg@10"] == pytest.approx(before["ndcg@10"])  # the usual convention ignores unscorable items
    assert m["recall_basket@10"] < before["recall_basket@10"]  # the next-basket one counts them as misses
    assert m["ndcg_basket@10"] < before["ndcg_basket@10"]
    assert m["ndcg_basket@10"] <= m["ndcg@10"]


def test_tuning_sees_only_pre_validation_data_and_final_refit_uses_best_params() -> None:
    calls: list[tuple[str, dict, datetime]] = []
    lines = _lines()
    results = run_evaluate(
        lines,
        protocol="temporal",
        models=["mix"],
        test_days=14,
        tune=True,
        time_budget=60,
        registry=_registry(calls),
        spaces={"mix": {"weight": [0.0, 0.5, 1.0]}},
    )
    cutoff = lines["timestamp"].max() - timedelta(days=14)
    validation_start = cutoff - timedelta(days=14)
    tuning_calls, final_calls = calls[:-1], calls[-1:]
    assert len(tuning_calls) == 3
    assert all(seen < validation_start for _, _, seen in tuning_calls)
    # The final model is refit on train + validation (it sees the validation window) with the winner.
    _, params, seen = final_calls[0]
    assert validation_start <= seen < cutoff
    assert params == results["tuning"]["mix"]["best_params"] and params["weight"] > 0
    assert results["models"]["mix"]["params"] == params


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        run_evaluate(_lines(n=500), protocol="temporal", models=["nope"], registry=_registry([]))


def test_new_items_variant_of_a_library_model_never_recommends_past_purchases() -> None:
    pytest.importorskip("recsys.models")
    results = run_evaluate(_lines(), protocol="temporal", models=["popularity", "popularity:new"], test_days=14)
    plain, new_only = results["models"]["popularity"], results["models"]["popularity:new"]
    assert new_only["repeat_recall@10"] == 0.0 and new_only["repeat_hit_rate@20"] == 0.0
    # Slots freed from past purchases go to new items, so exploring can only improve.
    assert new_only["explore_recall@10"] >= plain["explore_recall@10"]


def test_a_new_items_variant_asks_the_model_fitted_for_its_base_and_the_explore_summary_names_the_best() -> None:
    pytest.importorskip("recsys.models")
    results = run_evaluate(
        _lines(), protocol="temporal", models=["popularity", "trending", "trending:new"], test_days=14
    )
    new_only = results["models"]["trending:new"]
    assert new_only["fit_shared_with"] == "trending"
    assert new_only["fit_seconds"] == results["models"]["trending"]["fit_seconds"]
    explore = results["explore"]
    best = max(("trending", "trending:new"), key=lambda m: results["models"][m]["explore_recall@10"])
    assert explore["best"] == best
    assert explore["vs_popularity"] == pytest.approx(
        results["models"][best]["explore_recall@10"] / results["models"]["popularity"]["explore_recall@10"], abs=1e-3
    )


def test_the_default_model_list_ends_with_the_explore_lists() -> None:
    from training.jobs.evaluate import DEFAULT_MODELS, EXPLORE_MODELS

    assert DEFAULT_MODELS[-len(EXPLORE_MODELS) :] == EXPLORE_MODELS
    assert "trending:new" in EXPLORE_MODELS and "popularity:new" in EXPLORE_MODELS


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
