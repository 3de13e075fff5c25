"""`run_train` with views and clicks: off (weights 0) it writes byte for byte what it wrote without them; on, the
manifest says what was added and buy-again, popularity and the bought items stay purchases only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from recsys.columns import Columns
from recsys.implicit_feedback import FeedbackWeights
from recsys.models import load_recommender
from tests.helpers.feedback import feedback_frame
from training.jobs.train import run_train

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
MODELS = ("buy_again", "als", "popularity")


def _shop() -> SimpleNamespace:
    """30 customers, 3 orders each: two staples per customer and a rotating snack; 'gadget' bought by c0..c9."""
    rows = []
    for c in range(30):
        for o in range(3):
            when = T0 + dt.timedelta(days=7 * o + c % 5)
            for item in (f"milk{c % 4}", f"bread{c % 3}", f"snack{(c + o) % 6}"):
                rows.append((f"c{c}", item, when, f"c{c}-{o}"))
            if c < 10 and o == 0:
                rows.append((f"c{c}", "gadget", when, f"c{c}-{o}"))
    tx = pl.DataFrame(
        rows, schema=[Columns.customer_id, Columns.item_id, Columns.timestamp, Columns.order_id], orient="row"
    ).with_columns(
        pl.col(Columns.timestamp).dt.cast_time_unit("us"),
        pl.lit(1.0).alias(Columns.quantity),
        pl.lit(2.0).alias(Columns.price),
        pl.lit(2.0).alias(Columns.amount),
    )
    return SimpleNamespace(transactions=tx, catalog=None, returns=tx.head(0))


def _views() -> pl.DataFrame:
    """c10..c29 view (and c10..c14 click) the gadget they never bought; plus a view of an item nobody bought."""
    rows = [(f"c{c}", "gadget", T0 + dt.timedelta(days=20), "view") for c in range(10, 30)]
    rows += [(f"c{c}", "gadget", T0 + dt.timedelta(days=20), "click") for c in range(10, 15)]
    rows += [("c10", "never-sold", T0 + dt.timedelta(days=20), "view")]
    return feedback_frame(rows)


def _train(out: Path, weights: FeedbackWeights | None, rows: pl.DataFrame | None) -> dict:
    return run_train(
        _shop(),
        out,
        models=MODELS,
        k=5,
        primary="hybrid",
        similar_min_buyers=1,
        similar_candidate_min_buyers=1,
        feedback_rows=rows,
        feedback_weights=weights,
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain")
    _train(out, None, None)
    return out


def test_weights_at_zero_write_the_same_bytes_as_training_without_views(plain: Path, tmp_path: Path) -> None:
    summary = _train(tmp_path, FeedbackWeights(view=0.0, click=0.0), _views())
    assert summary["implicit_feedback"] == {"view_weight": 0.0, "click_weight": 0.0, "used": False}
    for name in ("recommendations.parquet", "similar_items.parquet", "fallbacks.parquet"):
        assert (tmp_path / name).read_bytes() == (plain / name).read_bytes(), name
    for path in sorted((plain / "recommender").glob("*.npz")):
        assert (tmp_path / "recommender" / path.name).read_bytes() == path.read_bytes(), path.name


def test_views_reach_the_collaborative_models_only_and_the_manifest_says_how_many(plain: Path, tmp_path: Path) -> None:
    summary = _train(tmp_path, FeedbackWeights(view=0.5, click=1.0), _views())
    feedback = summary["implicit_feedback"]
    assert feedback["used"] and (feedback["view_weight"], feedback["click_weight"]) == (0.5, 1.0)
    assert feedback["pairs_added"] == {"view": 20, "click": 5}
    assert feedback["dropped_unknown_item"] == 1  # never-sold: no purchase, so no column to add it to
    manifest = json.loads((tmp_path / "train_manifest.json").read_text())
    assert manifest["implicit_feedback"] == feedback

    before, after = (load_recommender(d / "recommender" / "als.json") for d in (plain, tmp_path))
    assert np.abs(before.user_factors_ - after.user_factors_).max() > 0  # type: ignore[attr-defined]
    assert (before.user_items_ != after.user_items_).nnz == 0  # the bought items: purchases only
    buy_again = [load_recommender(d / "recommender" / "buy_again.json") for d in (plain, tmp_path)]
    assert (buy_again[0].scores_ != buy_again[1].scores_).nnz == 0  # type: ignore[attr-defined]
    popularity = [load_recommender(d / "recommender" / "popularity.json") for d in (plain, tmp_path)]
    np.testing.assert_array_equal(popularity[0].item_scores_, popularity[1].item_scores_)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(*(pl.read_parquet(d / "fallbacks.parquet").to_numpy() for d in (plain, tmp_path)))

    # without views nobody who did not buy the gadget is offered it; with them each viewer is, as a new item
    # ("personalized"), never as something to buy again
    offered = [
        pl.read_parquet(d / "recommendations.parquet").filter(pl.col(Columns.item_id) == "gadget")
        for d in (plain, tmp_path)
    ]
    assert offered[0].is_empty()
    assert sorted(offered[1].get_column(Columns.customer_id)) == sorted(f"c{c}" for c in range(10, 30))
    assert set(offered[1].get_column(Columns.source)) == {"personalized"}
