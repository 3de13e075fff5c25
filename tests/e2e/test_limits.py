"""Issue 16 limits on the app (real Redis): auth before the body, 413, 431, rate limits, cheap unknown-key floods."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import redis

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from tests.helpers.http import bearer, write_artifacts
from training.jobs.publish import run_publish

EARN = "/v1/customers/c1/loyalty/earn"
RECS = "/v1/customers/c1/recommendations"


@contextlib.asynccontextmanager
async def limited_client(redis_url: str, keys: Keys, **limits: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(redis_url=redis_url, env=keys.env, **limits)
    app = create_app(settings, gc_tuning=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://centric.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class CountingBody:
    """A streamed (chunked) request body that counts how many of its chunks the server pulled."""

    def __init__(self, chunks: int, size: int = 1024) -> None:
        self.chunks, self.size, self.pulled = chunks, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * self.size


def test_a_request_without_a_key_gets_401_whatever_its_body(redis_url: str, keys: Keys) -> None:
    async def body() -> list[httpx.Response]:
        async with limited_client(redis_url, keys) as http:
            return [
                await http.post(EARN, content=b'{"amount": ', headers={"content-type": "application/json"}),
                await http.post(EARN, json={"amount": 10**40}),
                await http.post("/v1/events", content=b"not json at all"),
                await http.post(EARN, content=b"{}", headers={"Authorization": "Bearer ck_nope_x"}),
            ]

    answers = asyncio.run(body())
    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    assert [a.json()["code"] for a in answers] == ["missing_api_key"] * 3 + ["invalid_api_key"]
    assert all(a.headers["connection"] == "close" for a in answers)  # the unread body ends the connection


def test_the_key_is_checked_before_the_body_is_read(redis_url: str, keys: Keys) -> None:
    read = bearer(redis_url, keys, "read")
    no_key, low_scope = CountingBody(50), CountingBody(50)

    async def body() -> list[httpx.Response]:
        async with limited_client(redis_url, keys) as http:
            return [
                await http.post(EARN, content=no_key, headers={"Idempotency-Key": "k1"}),
                await http.post(EARN, content=low_scope, headers={**read, "Idempotency-Key": "k2"}),
            ]

    missing, forbidden = asyncio.run(body())
    assert missing.status_code == 401 and forbidden.status_code == 403
    assert forbidden.json()["code"] == "insufficient_scope"
    assert no_key.pulled == 0 and low_scope.pulled == 0


def test_a_body_above_the_limit_answers_413_without_being_read_in_full(redis_url: str, keys: Keys) -> None:
    write = bearer(redis_url, keys, "write")
    streamed, events_body = CountingBody(200), CountingBody(200)  # 200 KiB each, chunked, no Content-Length

    async def body() -> list[httpx.Response]:
        async with limited_client(redis_url, keys, max_body_bytes=8 * 1024) as http:
            return [
                await http.post(EARN, content=b"x" * 100_000, headers={**write, "Idempotency-Key": "k1"}),
                await http.post(EARN, content=streamed, headers={**write, "Idempotency-Key": "k2"}),
                await http.post("/v1/events", content=events_body, headers=write),
            ]

    declared, chunked, events = asyncio.run(body())
    for answer in (declared, chunked, events):
        assert answer.status_code == 413, answer.text
        assert answer.json()["code"] == "body_too_large" and "8,192 bytes" in answer.json()["detail"]
        assert answer.headers["connection"] == "close"
    assert streamed.pulled <= 10 and events_body.pulled <= 10  # refused once past 8 KiB, not read to the end


def test_headers_above_the_limit_answer_431(redis_url: str, keys: Keys) -> None:
    read = bearer(redis_url, keys, "read")

    async def body() -> httpx.Response:
        async with limited_client(redis_url, keys, max_header_bytes=2048) as http:
            return await http.get(RECS, headers={**read, "X-Padding": "p" * 4000})

    answer = asyncio.run(body())
    assert answer.status_code == 431 and answer.json()["code"] == "headers_too_large"


def test_a_key_over_its_rate_gets_429_with_retry_after(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    run_publish(redis_client, keys, write_artifacts(tmp_path / "art"))
    read, other = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "read")

    async def body() -> tuple[list[httpx.Response], httpx.Response]:
        async with limited_client(redis_url, keys, rate_limit_per_s=1, rate_limit_burst=5) as http:
            answers = [await http.get(RECS, params={"k": 2}, headers=read) for _ in range(8)]
            return answers, await http.get(RECS, params={"k": 2}, headers=other)

    answers, other_key = asyncio.run(body())
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
    assert other_key.status_code == 200  # the limit is per key


def test_an_unknown_key_flood_costs_few_redis_lookups_and_ends_in_429(redis_url: str, keys: Keys) -> None:
    lookups = 0

    async def body() -> tuple[list[int], list[int]]:
        nonlocal lookups
        async with limited_client(redis_url, keys, auth_lookups_per_s=2) as http:
            state = http.app.state  # type: ignore[attr-defined]
            original = state.redis.hget

            async def counted(*args: Any) -> Any:
                nonlocal lookups
                lookups += 1
                return await original(*args)

            state.redis.hget = counted
            same = [
                (await http.get(RECS, headers={"Authorization": "Bearer ck_same_secret"})).status_code
                for _ in range(20)
            ]
            random_keys = [
                (await http.get(RECS, headers={"Authorization": f"Bearer ck_r{n}_secret"})).status_code
                for n in range(30)
            ]
            return same, random_keys

    same, random_keys = asyncio.run(body())
    assert set(same) == {401}  # the same unknown key: one lookup, then remembered
    assert random_keys[:3] == [401, 401, 401] and 429 in random_keys
    assert lookups <= 1 + 4 + 1  # one for the repeated key, the address's burst (2 x rate), rounding


def test_valid_keys_from_one_address_are_never_refused_and_share_their_lookups(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """A backend behind one address sends 200 concurrent requests with 3 valid, uncached keys: no 429, and each
    key costs one Redis lookup (concurrent misses share it), not one per request."""
    run_publish(redis_client, keys, write_artifacts(tmp_path / "art"))
    headers = [bearer(redis_url, keys, "read") for _ in range(3)]
    lookups = 0

    async def body() -> list[int]:
        nonlocal lookups
        async with limited_client(redis_url, keys, auth_lookups_per_s=1) as http:
            state = http.app.state  # type: ignore[attr-defined]
            original = state.redis.hget

            async def counted(*args: Any) -> Any:
                nonlocal lookups
                lookups += 1
                return await original(*args)

            state.redis.hget = counted
            answers = await asyncio.gather(
                *(http.get(RECS, params={"k": 2}, headers=headers[n % 3]) for n in range(200))
            )
            return [a.status_code for a in answers]

    statuses = asyncio.run(body())
    assert set(statuses) == {200}
    assert lookups == 3


def test_an_unexpected_error_answers_json_500_and_closes_the_connection(redis_url: str, keys: Keys) -> None:
    async def body() -> httpx.Response:
        async with limited_client(redis_url, keys) as http:
            app = http.app  # type: ignore[attr-defined]

            async def boom() -> None:
                raise RuntimeError("a bug")

            app.add_api_route("/boom", boom)
            return await http.get("/boom")

    answer = asyncio.run(body())
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
    assert answer.headers["connection"] == "close"
