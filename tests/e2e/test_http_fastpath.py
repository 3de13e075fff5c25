"""The read fast path answers exactly what the FastAPI routes answer, and defers everything else to them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

from recsys.store.keys import Keys
from serving.hotpath.reads import FastReadPath
from tests.helpers.http import app_client, bearer, write_artifacts
from training.jobs.publish import run_publish


def test_fast_answers_equal_the_routed_answers_and_errors_fall_through(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_publish(redis_client, keys, write_artifacts(tmp_path / "art"))
    headers = bearer(redis_url, keys, "read")
    fast_answers: list[bool] = []
    original = FastReadPath._answer

    async def spy(self: FastReadPath, scope: Any, route: Any, entity_id: str) -> bytes | None:
        body = await original(self, scope, route, entity_id)
        fast_answers.append(body is not None)
        return body

    monkeypatch.setattr(FastReadPath, "_answer", spy)
    url = "/v1/customers/c1/recommendations"

    async def body() -> list[Any]:
        async with app_client(redis_url, keys) as http:
            return [
                await http.get(
                    url, params={"k": 3, "exclude": "eggs"}, headers=headers
                ),  # key checked by the guard: fast
                await http.get(url, params={"k": 3, "exclude": "eggs"}, headers=headers),  # cached key: fast
                await http.get(url, params={"k": 0}, headers=headers),
                await http.get(url, params={"limit": 3}, headers=headers),
                await http.get(url, headers={"Authorization": "Bearer ck_unknown_key"}),
                await http.get("/v1/customers/nobody/recommendations", params={"k": 2}, headers=headers),
                await http.get("/v1/customers/c1/profile", headers=headers),
                await http.get("/v1/items/milk/similar", params={"k": 2}, headers=headers),
                await http.get("/v1/customers/c2/profile", headers=headers),
                await http.get("/metrics"),
            ]

    routed, fast, bad_k, unknown_param, bad_key, fallback, profile, similar, no_profile, metrics = asyncio.run(body())
    assert fast_answers[:2] == [True, True]
    assert routed.status_code == fast.status_code == 200 and routed.json() == fast.json()
    assert fast.headers["content-type"] == "application/json"
    assert bad_k.status_code == 422 and unknown_param.status_code == 422 and bad_key.status_code == 401
    assert fast_answers[2:4] == [False, False]  # the unknown key is refused by the guard, before either path
    assert fallback.status_code == 200 and all(i["source"] == "fallback" for i in fallback.json()["items"])
    assert fast_answers[4:8] == [True, True, True, False]  # fallback, profile, similar fast; unknown profile deferred
    assert profile.json()["segment"] == "champions" and [i["item_id"] for i in similar.json()["items"]] == [
        "eggs",
        "bread",
    ]
    assert no_profile.status_code == 404 and no_profile.json()["code"] == "unknown_customer"
    assert 'route="/v1/customers/{customer_id}/recommendations",status="200"' in metrics.text
    assert 'route="/v1/items/{item_id}/similar",status="200"' in metrics.text
