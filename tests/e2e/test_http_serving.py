"""End to end over HTTP against real Redis: publish → serve → event → changed answer; auth; error shapes."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import redis

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from tests.helpers.http import app_client, bearer, write_artifacts
from training.jobs.publish import run_publish


@pytest.fixture
def published(tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis) -> dict[str, Any]:
    return run_publish(redis_client, keys, write_artifacts(tmp_path / "artifacts"))


def test_recommendations_name_version_source_and_reason(published: dict[str, Any], redis_url: str, keys: Keys) -> None:
    headers = bearer(redis_url, keys, "read")

    async def body() -> Any:
        async with app_client(redis_url, keys) as http:
            return await http.get("/v1/customers/c1/recommendations", params={"k": 3}, headers=headers)

    response = asyncio.run(body())
    assert response.status_code == 200
    data = response.json()
    assert data["customer_id"] == "c1" and data["version"] == published["version"]
    assert [i["item_id"] for i in data["items"]] == ["milk", "eggs", "tea"]
    assert all(i["source"] == "personalized" and i["reason"] for i in data["items"])


def test_a_purchase_event_changes_the_next_answer(
    published: dict[str, Any], redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    read, write = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "write")

    async def body() -> tuple[Any, Any, Any]:
        async with app_client(redis_url, keys) as http:
            before = (await http.get("/v1/customers/c1/recommendations", headers=read)).json()
            posted = await http.post(
                "/v1/events",
                headers=write,
                json={
                    "events": [
                        {"type": "purchase", "customer_id": "c1", "item_id": "eggs", "quantity": 1, "price": 2.0},
                        {"type": "purchase", "customer_id": "c1", "item_id": "milk"},
                        {"type": "view", "customer_id": "c1", "item_id": "tea"},
                    ]
                },
            )
            after = (await http.get("/v1/customers/c1/recommendations", headers=read)).json()
            return before, posted, after

    before, posted, after = asyncio.run(body())
    assert posted.status_code == 202 and posted.json() == {"accepted": 3}
    assert redis_client.xlen(keys.events_stream()) == 3
    assert "eggs" in [i["item_id"] for i in before["items"]]
    sources = {i["item_id"]: i["source"] for i in after["items"]}
    assert "eggs" not in sources  # bought, not a repeat category: not recommended again
    assert sources["milk"] == "buy_again"  # bought, repeat category: kept as buy-again


def test_unknown_customer_gets_a_fallback_and_out_of_stock_is_filtered(
    published: dict[str, Any], redis_url: str, keys: Keys
) -> None:
    headers = bearer(redis_url, keys, "read")

    async def body() -> tuple[Any, Any, Any]:
        async with app_client(redis_url, keys) as http:
            unknown = await http.get("/v1/customers/stranger/recommendations", params={"k": 2}, headers=headers)
            category = await http.get(
                "/v1/customers/stranger/recommendations", params={"category": "bakery"}, headers=headers
            )
            excluded = await http.get(
                "/v1/customers/c1/recommendations", params={"exclude": "milk,tea"}, headers=headers
            )
            return unknown.json(), category.json(), excluded.json()

    unknown, category, excluded = asyncio.run(body())
    assert [i["item_id"] for i in unknown["items"]] == ["coffee", "bread"]  # trending first, then popular
    assert all(i["source"] == "fallback" for i in unknown["items"])
    assert [i["item_id"] for i in category["items"]] == ["bread"]
    assert {"milk", "tea"}.isdisjoint(i["item_id"] for i in excluded["items"])
    assert "caviar" not in {i["item_id"] for r in (unknown, category, excluded) for i in r["items"]}


def test_similar_basket_and_profile(published: dict[str, Any], redis_url: str, keys: Keys) -> None:
    headers = bearer(redis_url, keys, "read")

    async def body() -> list[Any]:
        async with app_client(redis_url, keys) as http:
            return [
                await http.get("/v1/items/milk/similar", params={"k": 2}, headers=headers),
                await http.post(
                    "/v1/recommendations/basket", json={"item_ids": ["milk", "eggs"], "k": 3}, headers=headers
                ),
                await http.get("/v1/customers/c1/profile", headers=headers),
                await http.get("/v1/items/nope/similar", headers=headers),
                await http.get("/v1/customers/c2/profile", headers=headers),
            ]

    similar, basket, profile, unknown_item, no_profile = asyncio.run(body())
    assert similar.status_code == 200
    assert [i["item_id"] for i in similar.json()["items"]] == ["eggs", "bread"]
    assert similar.json()["item_id"] == "milk" and similar.json()["version"] == published["version"]
    items = basket.json()["items"]
    assert [i["item_id"] for i in items][:2] == ["bread", "jam"] and items[0]["source"] == "cross_sell"
    assert not {"milk", "eggs"} & {i["item_id"] for i in items}
    p = profile.json()
    assert (p["segment"], p["lifecycle"], p["clv"], p["version"]) == (
        "champions",
        "active",
        150.0,
        published["version"],
    )
    assert p["p_alive"] == pytest.approx(0.9)
    assert (
        unknown_item.status_code == 404
        and unknown_item.json()["code"] == "unknown_item"
        and "nope" in unknown_item.json()["detail"]
    )
    assert no_profile.status_code == 404 and no_profile.json()["code"] == "unknown_customer"


def test_auth_scopes_and_open_endpoints(published: dict[str, Any], redis_url: str, keys: Keys) -> None:
    read, admin = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "admin")

    async def body() -> dict[str, Any]:
        async with app_client(redis_url, keys) as http:
            event = {"events": [{"type": "view", "customer_id": "c1", "item_id": "tea"}]}
            return {
                "none": await http.get("/v1/customers/c1/recommendations"),
                "bad": await http.get(
                    "/v1/customers/c1/recommendations", headers={"Authorization": "Bearer ck_nope_nope"}
                ),
                "read_writes": await http.post("/v1/events", json=event, headers=read),
                "admin_writes": await http.post("/v1/events", json=event, headers=admin),
                "admin_reads": await http.get("/v1/customers/c1/recommendations", headers=admin),
                "healthz": await http.get("/healthz"),
                "readyz": await http.get("/readyz"),
                "metrics": await http.get("/metrics"),
                "docs": await http.get("/docs"),
            }

    r = asyncio.run(body())
    assert r["none"].status_code == 401 and r["none"].json()["code"] == "missing_api_key"
    assert r["bad"].status_code == 401 and r["bad"].json()["code"] == "invalid_api_key"
    assert r["read_writes"].status_code == 403 and r["read_writes"].json()["code"] == "insufficient_scope"
    assert r["admin_writes"].status_code == 202 and r["admin_reads"].status_code == 200
    assert r["healthz"].status_code == 200
    assert r["readyz"].status_code == 200 and r["readyz"].json()["version"] == published["version"]
    assert (
        "centric_request_seconds_bucket" in r["metrics"].text
        and 'route="/v1/customers/{customer_id}/recommendations"' in r["metrics"].text
    )
    assert r["docs"].status_code == 200


def test_validation_errors_name_the_parameter(published: dict[str, Any], redis_url: str, keys: Keys) -> None:
    read, write = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "write")

    async def body() -> list[Any]:
        async with app_client(redis_url, keys) as http:
            return [
                await http.get("/v1/customers/c1/recommendations", params={"k": 0}, headers=read),
                await http.get("/v1/customers/c1/recommendations", params={"k": 100000}, headers=read),
                await http.get("/v1/customers/c1/recommendations", params={"limit": 5}, headers=read),
                await http.post(
                    "/v1/events", json={"events": [{"type": "purchase", "customer_id": "c1"}]}, headers=write
                ),
                await http.post(
                    "/v1/events", json={"events": [{"type": "teleport", "customer_id": "c1"}]}, headers=write
                ),
            ]

    k_low, k_high, unknown_param, purchase_without_item, bad_type = asyncio.run(body())
    for response in (k_low, k_high, unknown_param, purchase_without_item, bad_type):
        assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert "query parameter k" in k_low.json()["detail"] and "query parameter k" in k_high.json()["detail"]
    assert "limit" in unknown_param.json()["detail"] and "allowed" in unknown_param.json()["detail"]
    assert "needs item_id" in purchase_without_item.json()["detail"]


def test_readyz_is_503_before_anything_is_published(redis_url: str, keys: Keys) -> None:
    async def body() -> Any:
        async with app_client(redis_url, keys) as http:
            return await http.get("/readyz"), await http.get("/v1/customers/c1/recommendations", headers=headers)

    headers = bearer(redis_url, keys, "read")
    ready, recs = asyncio.run(body())
    assert ready.status_code == 503 and ready.json()["code"] == "no_active_snapshot"
    assert (
        recs.status_code == 503
        and recs.json()["code"] == "no_active_snapshot"
        and "centric publish" in recs.json()["detail"]
    )


def test_offer_events_reach_the_offer_counters(
    published: dict[str, Any], redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    write = bearer(redis_url, keys, "write")

    async def body() -> Any:
        async with app_client(redis_url, keys) as http:
            return await http.post(
                "/v1/events",
                headers=write,
                json={
                    "events": [
                        {"type": "impression", "customer_id": "c1", "offer_id": "o1", "channel": "app"},
                        {"type": "redeem", "customer_id": "c1", "offer_id": "o1"},
                    ]
                },
            )

    response = asyncio.run(body())
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    budget = redis_client.hgetall(keys.nba_budget("o1"))
    assert budget[b"impressions"] == b"1" and budget[b"redemptions"] == b"1"


def test_an_event_batch_retried_with_its_idempotency_key_counts_once(
    published: dict[str, Any], redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    write = bearer(redis_url, keys, "write")
    batch = {"events": [{"type": "redeem", "customer_id": "c1", "offer_id": "o1", "timestamp": "2026-01-05T10:00:00Z"}]}

    async def body() -> list[Any]:
        async with app_client(redis_url, keys) as http:
            keyed = {**write, "Idempotency-Key": "b1"}
            return [
                await http.post("/v1/events", json=batch, headers=keyed),
                await http.post("/v1/events", json=batch, headers=keyed),
                await http.post(
                    "/v1/events", json={"events": [{**batch["events"][0], "customer_id": "c2"}]}, headers=keyed
                ),
                await http.post("/v1/events", json=batch, headers={**write, "Idempotency-Key": ""}),
            ]

    first, retry, reused, empty = asyncio.run(body())
    assert (first.status_code, retry.status_code) == (202, 202) and retry.json() == first.json()
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_conflict"
    assert empty.status_code == 422
    assert redis_client.xlen(keys.events_stream()) == 1
    assert int(redis_client.hget(keys.nba_contacts("c1"), "redn:o1")) == 1


# ====================================================================================================================
# Serving regressions found in review (was tests/integration/test_serving_review.py)
#
# Regressions from a review (2026-11-30) of the publish -> Redis snapshot -> serving read path.
#
# Every test here failed before its fix; each docstring names the input or interleaving that went wrong then.
# ====================================================================================================================


async def _raw_app(redis_url: str, keys: Keys, body: Any) -> Any:
    """Run ``body(http)`` on an app whose unhandled exceptions become 500 responses (as under uvicorn)."""
    app = create_app(Settings(redis_url=redis_url, env=keys.env), gc_tuning=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://centric.test") as http:
            return await body(http)


def _post_raw_events(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis, bodies: tuple[str, ...]
) -> list[int]:
    """Publish the tiny snapshot, POST each raw JSON body to ``/v1/events``; return the status codes in order."""
    run_publish(redis_client, keys, write_artifacts(tmp_path / "art"))
    headers = {**bearer(redis_url, keys, "write"), "content-type": "application/json"}

    async def body(http: httpx.AsyncClient) -> list[int]:
        return [(await http.post("/v1/events", headers=headers, content=raw)).status_code for raw in bodies]

    return asyncio.run(_raw_app(redis_url, keys, body))


# --- codec: scores --------------------------------------------------------------------------------


def test_large_scores_survive_publish_and_are_served_as_numbers(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """Scores above float16's range (65504) become inf in the codec and ``null`` in the JSON answer.

    ``popular`` is the number of distinct buyers per item (train.py: ``np.diff(indptr)``): a shop with more than
    65 504 buyers of its top item publishes a ``popular`` list whose scores are served as ``"score": null``,
    which also breaks ``ItemPublic.score: float``. The same holds for ranked lists (recommendations, similar).
    """
    art = write_artifacts(tmp_path / "art")
    pl.DataFrame(
        {
            "list": ["popular", "popular", "trending"],
            "item_id": ["bread", "milk", "coffee"],
            "rank": [1, 2, 1],
            "score": [120_000.0, 70_000.0, 80_000.0],
        }
    ).write_parquet(art / "fallbacks.parquet")
    pl.DataFrame(
        {
            "customer_id": ["c1", "c1"],
            "item_id": ["milk", "eggs"],
            "rank": pl.Series([1, 2], dtype=pl.Int32),
            "score": pl.Series([250_000.0, 90_000.0], dtype=pl.Float32),
            "source": ["buy_again"] * 2,
            "reason": ["bought often"] * 2,
        }
    ).write_parquet(art / "recommendations.parquet")
    run_publish(redis_client, keys, art)
    headers = bearer(redis_url, keys, "read")

    async def body() -> tuple[Any, Any]:
        async with app_client(redis_url, keys) as http:
            known = await http.get("/v1/customers/c1/recommendations", params={"k": 2}, headers=headers)
            unknown = await http.get("/v1/customers/stranger/recommendations", params={"k": 3}, headers=headers)
            return known.json(), unknown.json()

    known, unknown = asyncio.run(body())
    for answer in (known, unknown):
        for item in answer["items"]:
            assert isinstance(item["score"], float) and math.isfinite(item["score"]), answer


# --- events --------------------------------------------------------------------------------------------


def test_events_with_infinite_quantity_or_price_are_rejected(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """``quantity: 1e999`` is valid JSON that parses to inf; ``gt=0`` lets it through and the stream gets ``inf``.

    The offline loader rejects non-finite quantities/prices (``non_finite_quantity``), so such events are accepted
    (202) here and silently dropped later.
    """
    raw = (
        '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","quantity":1e999}]}',
        '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","price":1e999}]}',
    )
    assert _post_raw_events(tmp_path, redis_url, keys, redis_client, raw) == [422, 422]
    assert redis_client.xlen(keys.events_stream()) == 0


def test_events_with_unencodable_input_are_422_not_500(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """Two inputs pass validation and then crash the handler with a 500 (nothing is written):

    - a timestamp whose UTC conversion leaves datetime's range (``9999-12-31T23:00:00-05:00``): the
      ``_utc`` validator raises ``OverflowError``, which pydantic does not turn into a validation error;
    - a JSON string with a lone surrogate (``"\\ud800"``): accepted as ``str``, then refused by the
      UTF-8 packer of the XADD (``TypeError``).
    """
    raw = (
        '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","timestamp":"9999-12-31T23:00:00-05:00"}]}',
        '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","timestamp":"0001-01-01T00:00:00+01:00"}]}',
        '{"events":[{"type":"purchase","customer_id":"\\ud800","item_id":"tea"}]}',
    )
    assert _post_raw_events(tmp_path, redis_url, keys, redis_client, raw) == [422, 422, 422]
