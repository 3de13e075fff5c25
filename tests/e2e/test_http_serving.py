"""End to end over HTTP against real Redis: publish → serve → event → changed answer; auth; error shapes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

from recsys.store.keys import Keys
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
