"""The anchor of a "customers who buy X also buy this" reason: the bought item listing the new item as most similar."""

from __future__ import annotations

import numpy as np
import polars as pl

from training.jobs.train_outputs import _anchors


def _case(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    items = [f"i{n}" for n in range(30)]
    bought = pl.DataFrame(
        {"customer_id": [f"c{c}" for c in rng.integers(0, 40, 300)], "item_id": rng.choice(items, 300)}
    ).unique()
    new = pl.DataFrame(
        {"customer_id": [f"c{c}" for c in rng.integers(0, 40, 200)], "item_id": rng.choice(items, 200)}
    ).unique()
    similar = pl.DataFrame(
        {
            "item_id": np.repeat(items, 5),
            "similar_item_id": rng.choice(items, 150),
            "score": np.round(rng.random(150), 1),  # rounded: ties happen
        }
    ).unique(["item_id", "similar_item_id"])
    return new, bought, similar


def _brute_force(new: pl.DataFrame, bought: pl.DataFrame, similar: pl.DataFrame) -> dict[tuple[str, str], str]:
    owned = set(bought.iter_rows())
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for customer, item in new.iter_rows():
        for anchor, target, score in similar.iter_rows():
            if target == item and (customer, anchor) in owned:
                key = (customer, item)
                if key not in best or (-score, anchor) < (-best[key][0], best[key][1]):
                    best[key] = (score, anchor)
    return {key: anchor for key, (_, anchor) in best.items()}


def test_anchor_is_the_most_similar_bought_item_with_ties_to_the_lower_id() -> None:
    for seed in range(3):
        new, bought, similar = _case(seed)
        got = _anchors(new, bought, similar)
        assert {(c, i): a for c, i, a in got.iter_rows()} == _brute_force(new, bought, similar)
        assert got.select("customer_id", "item_id").is_unique().all()


def test_anchors_do_not_depend_on_how_customers_are_chunked() -> None:
    new, bought, similar = _case(7)
    whole = _anchors(new, bought, similar, chunk=1_000).sort("customer_id", "item_id")
    assert whole.height > 20
    assert _anchors(new, bought, similar, chunk=3).sort("customer_id", "item_id").equals(whole)


def test_no_new_items_or_no_similar_items_give_no_anchors() -> None:
    new, bought, similar = _case(1)
    assert _anchors(new.head(0), bought, similar).is_empty()
    assert _anchors(new, bought, similar.head(0)).is_empty()
