"""The train job on a small synthetic shop: every artifact file is written with the contract's columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from recsys.columns import Columns
from recsys.models import load_recommender
from training.jobs.train import run_train

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _shop(seed: int = 1) -> SimpleNamespace:
    """40 customers, 4 orders each: dairy items are re-bought every order, furniture once."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(40):
        favourite = [f"milk{(c + j) % 6}" for j in range(2)]
        for o in range(4):
            when = T0 + timedelta(days=10 * o + c % 7)
            order = f"c{c}-o{o}"
            for item in favourite:
                rows.append((f"c{c}", item, when, order))
            rows.append((f"c{c}", f"snack{rng.integers(0, 8)}", when, order))
            if o == 1:
                rows.append((f"c{c}", f"sofa{c % 5}", when, order))
    tx = pl.DataFrame(
        rows, schema=[Columns.customer_id, Columns.item_id, Columns.timestamp, Columns.order_id], orient="row"
    )
    tx = tx.with_columns(
        pl.col(Columns.timestamp).dt.cast_time_unit("us"),
        pl.lit(1.0).alias(Columns.quantity),
        pl.lit(2.5).alias(Columns.price),
        pl.lit(2.5).alias(Columns.amount),
    )
    items = sorted(set(tx[Columns.item_id].to_list()))
    catalog = pl.DataFrame(
        {
            Columns.item_id: items,
            Columns.name: [f"Name of {i}" for i in items],
            Columns.category: [
                "dairy" if i.startswith("milk") else "snacks" if i.startswith("snack") else "furniture" for i in items
            ],
            Columns.price: [2.5] * len(items),
            Columns.in_stock: [i != "milk5" for i in items],
        }
    )
    return SimpleNamespace(transactions=tx, catalog=catalog, returns=tx.head(0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("artifacts")
    summary = run_train(
        _shop(),
        out,
        models=("buy_again", "als", "popularity", "trending", "popular_in_category"),
        k=5,
        similar_min_buyers=1,
        similar_candidate_min_buyers=1,
    )
    return out, summary


def test_train_writes_every_artifact_file_with_contract_columns(trained: tuple[Path, dict]) -> None:
    out, summary = trained
    recs = pl.read_parquet(out / "recommendations.parquet")
    assert recs.columns == ["customer_id", "item_id", "rank", "score", "source", "reason"]
    assert recs.schema["rank"] == pl.Int32 and recs.schema["score"] == pl.Float32
    assert recs["customer_id"].n_unique() == 40
    assert recs.group_by("customer_id").len()["len"].max() <= 5
    assert set(recs["source"].unique()) <= {"buy_again", "personalized"}
    assert pl.read_parquet(out / "similar_items.parquet").columns == ["item_id", "similar_item_id", "rank", "score"]
    fallbacks = pl.read_parquet(out / "fallbacks.parquet")
    assert {"popular", "trending", "category:dairy", "category:furniture"} <= set(fallbacks["list"].unique())
    items = pl.read_parquet(out / "items.parquet")
    assert items.columns == ["item_id", "name", "category", "price", "in_stock", "repeat_category"]
    manifest = json.loads((out / "train_manifest.json").read_text())
    assert manifest["primary_model"] in ("hybrid", "hybrid_ltr") and manifest["data_fingerprint"]
    assert manifest["counts"]["customers"] == 40
    for name in ("buy_again", "als", "hybrid", "popularity", "trending", "popular_in_category"):
        assert (out / "recommender" / f"{name}.npz").exists()
    assert summary["counts"]["recommendations"] == recs.height


def test_train_never_recommends_out_of_stock_or_bought_furniture(trained: tuple[Path, dict]) -> None:
    out, _ = trained
    recs = pl.read_parquet(out / "recommendations.parquet")
    tx = _shop().transactions
    assert recs.filter(pl.col("item_id") == "milk5").is_empty()
    bought_sofas = tx.filter(pl.col("item_id").str.starts_with("sofa")).select("customer_id", "item_id").unique()
    assert recs.join(bought_sofas, on=["customer_id", "item_id"]).is_empty()
    items = pl.read_parquet(out / "items.parquet")
    flags = dict(items.select("category", "repeat_category").unique().iter_rows())
    assert flags["dairy"] is True and flags["furniture"] is False
    fallbacks = pl.read_parquet(out / "fallbacks.parquet")
    assert fallbacks.filter(pl.col("item_id") == "milk5").is_empty()


def test_train_reasons_describe_the_purchase_history(trained: tuple[Path, dict]) -> None:
    out, _ = trained
    recs = pl.read_parquet(out / "recommendations.parquet")
    c0 = recs.filter((pl.col("customer_id") == "c0") & (pl.col("item_id") == "milk0"))
    assert c0["source"].to_list() == ["buy_again"]
    assert c0["reason"][0].startswith("bought 4 times, last ")
    personal = recs.filter(pl.col("source") == "personalized")
    assert personal["reason"].str.contains("also buy this|shop like you").all()


def test_saved_als_serves_fold_in_with_the_item_filter(trained: tuple[Path, dict]) -> None:
    out, _ = trained
    als = load_recommender(out / "recommender" / "als.json")
    ranked = als.recommend_from_items(["sofa1", "milk1"], k=50)
    ids = [item for item, _ in ranked]
    assert "sofa1" not in ids and "milk5" not in ids
    assert "milk1" in ids  # dairy is a repeat category: bought milk may come back


def test_train_with_als_explore_saves_the_hybrids_als_for_fold_in(tmp_path: Path) -> None:
    summary = run_train(_shop(), tmp_path, models=("als",), k=5, tune=False, explore="als", similar_min_buyers=1)
    hybrid = load_recommender(tmp_path / "recommender" / "hybrid.json")
    als = load_recommender(tmp_path / "recommender" / "als.json")
    assert hybrid.explore == "als" and summary["blend_tuning"] == {}
    np.testing.assert_array_equal(hybrid.explore_.item_factors_, als.item_factors_)


def test_train_with_the_learned_ranker_as_primary_serves_its_lists_with_the_filters(tmp_path: Path) -> None:
    summary = run_train(
        _shop(),
        tmp_path,
        models=("buy_again",),
        k=5,
        tune=False,
        primary="hybrid_ltr",
        similar_min_buyers=1,
    )
    assert summary["primary_model"] == "hybrid_ltr"
    manifest = json.loads((tmp_path / "train_manifest.json").read_text())
    assert manifest["primary_model"] == "hybrid_ltr" and "hybrid_ltr" in manifest["models"]
    model = load_recommender(tmp_path / "recommender" / "hybrid_ltr.json")
    recs = pl.read_parquet(tmp_path / "recommendations.parquet")
    first = recs.filter(pl.col(Columns.customer_id) == "c0").sort(Columns.rank)
    ids, _ = model.recommend([model.customers_.index_of("c0")], 5)
    assert first[Columns.item_id].to_list() == model.items_.to_external(ids[0][ids[0] >= 0])
    # the item filter travels with the served model: out of stock never, furniture bought once never again
    assert "milk5" not in recs[Columns.item_id].to_list()
    bought_sofa = recs.filter(pl.col(Columns.customer_id) == "c0", pl.col(Columns.item_id) == "sofa0")
    assert bought_sofa.is_empty()


def test_auto_primary_serves_the_better_model_on_each_customers_last_order(trained: tuple[Path, dict]) -> None:
    out, summary = trained
    manifest = json.loads((out / "train_manifest.json").read_text())
    choice = manifest["primary_choice"]
    scores = choice["validation_ndcg@10"]
    assert choice["mode"] == "auto" and set(scores) == {"hybrid", "hybrid_ltr"}
    assert choice["validation_customers"] == 40
    better = "hybrid_ltr" if scores["hybrid_ltr"] > scores["hybrid"] else "hybrid"
    assert manifest["primary_model"] == choice["chosen"] == better == summary["primary_model"]
    assert (out / "recommender" / f"{better}.npz").exists()


def test_a_named_primary_is_served_without_a_choice(tmp_path: Path) -> None:
    summary = run_train(_shop(), tmp_path, models=("buy_again",), primary="hybrid", tune=False)
    assert summary["primary_model"] == "hybrid" and summary["primary_choice"] == {"mode": "hybrid"}
    assert "choose_primary" not in summary["seconds"]


def test_train_refuses_an_unknown_primary_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="primary"):
        run_train(_shop(), tmp_path, models=("buy_again",), primary="als")
