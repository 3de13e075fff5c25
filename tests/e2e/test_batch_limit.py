"""CENTRIC_MAX_BATCH: a request with more events, order lines or grant lines than the service's limit gets 413."""

from __future__ import annotations

import asyncio

import httpx

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from tests.helpers.http import bearer


def _post_all(redis_url: str, keys: Keys, max_batch: int, hotpath: bool = True) -> list[httpx.Response]:
    admin = bearer(redis_url, keys, "admin")
    events = [{"type": "view", "customer_id": "c1", "item_id": f"i{n}"} for n in range(4)]
    lines = [{"item_id": f"i{n}", "quantity": 1, "price": "1.00"} for n in range(4)]
    grants = [{"customer_id": f"c{n}", "points": 5} for n in range(4)]

    async def body() -> list[httpx.Response]:
        app = create_app(Settings(redis_url=redis_url, env=keys.env, max_batch=max_batch), gc_tuning=False)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                return [
                    await http.post("/v1/events", json={"events": events}, headers=admin),
                    await http.post(
                        "/v1/customers/c1/loyalty/earn",
                        json={"order_id": "o1", "amount": "4.00", "items": lines},
                        headers={**admin, "Idempotency-Key": "e1"},
                    ),
                    await http.post(
                        "/v1/loyalty/grants",
                        json={"reason": "r", "grants": grants},
                        headers={**admin, "Idempotency-Key": "g1"},
                    ),
                ]

    return asyncio.run(body())


def test_lists_longer_than_the_configured_batch_limit_answer_413_naming_the_limit(redis_url: str, keys: Keys) -> None:
    answers = _post_all(redis_url, keys, max_batch=3)
    assert [a.status_code for a in answers] == [413, 413, 413]
    assert {a.json()["code"] for a in answers} == {"batch_too_large"}
    assert "at most 3 (CENTRIC_MAX_BATCH)" in answers[0].json()["detail"]
    assert "4 order lines" in answers[1].json()["detail"]


def test_lists_within_the_batch_limit_are_taken(redis_url: str, keys: Keys) -> None:
    answers = _post_all(redis_url, keys, max_batch=4)
    assert [a.status_code for a in answers] == [202, 200, 200]
