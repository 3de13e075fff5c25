"""Fold-in over HTTP: a customer unknown to the snapshot, with fresh purchases, gets ALS recommendations."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.store.keys import Keys
from tests.helpers.http import app_client, bearer, write_artifacts
from training.jobs.publish import run_publish


def _fit_als(directory: Path) -> None:
    from recsys.matrix import build_matrix
    from recsys.models import ALSRecommender

    # Two taste groups: dairy buyers and drinks buyers, 30 customers each.
    rows = []
    for c in range(60):
        basket = ["milk", "eggs", "bread"] if c < 30 else ["tea", "coffee", "jam"]
        rows += [(f"u{c}", item) for item in basket[: 2 + c % 2]]
    frame = pl.DataFrame(rows, schema=["customer_id", "item_id"], orient="row").with_columns(
        pl.lit(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).alias("timestamp"),
        pl.lit(1.0).alias("quantity"),
        pl.lit(1.0).alias("price"),
        pl.lit(1.0).alias("amount"),
        pl.col("customer_id").alias("order_id"),
    )
    model = ALSRecommender(factors=4, iterations=5).fit(build_matrix(frame))
    model.save(directory / "recommender")


def test_fresh_purchases_of_an_unknown_customer_are_folded_in(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    artifacts = write_artifacts(tmp_path / "art")
    _fit_als(artifacts)
    summary = run_publish(redis_client, keys, artifacts)
    assert "recommender/als.npz" in summary["files"]
    read, write = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "write")

    async def body() -> tuple[Any, Any]:
        async with app_client(redis_url, keys) as http:
            before = (await http.get("/v1/customers/newbie/recommendations", params={"k": 3}, headers=read)).json()
            await http.post(
                "/v1/events",
                headers=write,
                json={"events": [{"type": "purchase", "customer_id": "newbie", "item_id": "tea"}]},
            )
            after = (await http.get("/v1/customers/newbie/recommendations", params={"k": 3}, headers=read)).json()
            return before, after

    before, after = asyncio.run(body())
    assert all(i["source"] == "fallback" for i in before["items"])
    personalized = [i for i in after["items"] if i["source"] == "personalized"]
    assert personalized and "recent purchase" in personalized[0]["reason"]
    assert personalized[0]["item_id"] in {"coffee", "jam"}  # the drinks group, not dairy
    assert "tea" not in [i["item_id"] for i in after["items"]]


def test_fold_in_of_purchases_the_model_does_not_know_serves_the_fallback(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """A fresh customer whose only purchase is an item the ALS model never saw gets arbitrary items as "personalized".

    ``recommend_from_items`` ignores unknown ids, so the user vector is zero and every score is 0.0; top-k then
    returns the lowest item indices (bread, coffee, eggs), labelled ``personalized`` / "based on your 1 recent
    purchase". Nothing was learned: the customer should get the fallback chain like any unknown customer.
    """
    from test_http_foldin import _fit_als

    art = write_artifacts(tmp_path / "art")
    _fit_als(art)  # trained on milk, eggs, bread, tea, coffee, jam only
    run_publish(redis_client, keys, art)
    read, write = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "write")

    async def body() -> tuple[Any, Any]:
        async with app_client(redis_url, keys) as http:
            posted = await http.post(
                "/v1/events",
                headers=write,
                json={"events": [{"type": "purchase", "customer_id": "newbie", "item_id": "brand-new-sku"}]},
            )
            assert posted.status_code == 202
            fresh = (await http.get("/v1/customers/newbie/recommendations", params={"k": 3}, headers=read)).json()
            stranger = (await http.get("/v1/customers/stranger/recommendations", params={"k": 3}, headers=read)).json()
            return fresh, stranger

    fresh, stranger = asyncio.run(body())
    assert not [i for i in fresh["items"] if i["source"] == "personalized"], fresh
    assert [i["item_id"] for i in fresh["items"]] == [i["item_id"] for i in stranger["items"]]
