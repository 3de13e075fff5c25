"""The loyalty write fast path answers exactly what the FastAPI routes answer, and defers everything else to them.

The same request script runs twice on fresh namespaces of the same Redis: once with the fast path, once with
it forced to defer every request (so the routes answer, with the body replayed). Statuses, headers that matter
and JSON bodies must be identical, and the fast path must have answered the requests it is meant to answer.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from recsys.loyalty.ops import ledger_keys
from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from serving.hotpath.writes import FastWritePath
from serving.services import loyalty as service
from tests.helpers.http import FAST, bearer, clear_namespace, loyalty_requests

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def _run(redis_url: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[httpx.Response], set[int]]:
    """Run the script on a fresh namespace; return the responses (+ /metrics) and the indices the fast path answered."""
    keys = Keys(env=f"t{uuid.uuid4().hex[:12]}")
    w, r = bearer(redis_url, keys, "write"), bearer(redis_url, keys, "read")
    current, answered = [-1], set()
    original = FastWritePath._answer

    async def spy(self: FastWritePath, *args: Any) -> bool:
        done = await original(self, *args) if fast else False
        if done:
            answered.add(current[0])
        return done

    async def body() -> list[httpx.Response]:
        app = create_app(Settings(redis_url=redis_url, env=keys.env, loyalty_program=PROGRAM), gc_tuning=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http,
        ):
            out = []
            for i, (method, url, kwargs) in enumerate(loyalty_requests(w, r)):
                current[0] = i
                out.append(await http.request(method, url, **kwargs))
            out.append(await http.get("/metrics"))
            return out

    with monkeypatch.context() as patch:
        patch.setattr(FastWritePath, "_answer", spy)
        patch.setattr(service, "utcnow", lambda: NOW)
        try:
            return asyncio.run(body()), answered
        finally:
            clear_namespace(redis_url, keys)


def test_fast_writes_equal_the_routed_writes(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, fast_answered = _run(redis_url, True, monkeypatch)
    routed, routed_answered = _run(redis_url, False, monkeypatch)
    assert routed_answered == set()
    assert fast_answered == FAST
    for i, (a, b) in enumerate(zip(fast[:-1], routed[:-1], strict=True)):
        assert (a.status_code, a.json()) == (b.status_code, b.json()), f"request {i}"
        assert a.headers["content-type"] == b.headers["content-type"], f"request {i}"
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate"), f"request {i}"
        assert a.content == b.content, f"request {i}"
    statuses = [x.status_code for x in fast[:-1]]
    assert statuses[2:9] == [200, 200, 409, 409, 200, 200, 200]
    assert statuses[9:19] == [422] * 10
    assert statuses[19:22] == [401, 401, 403]
    assert statuses[22:27] == [404, 200, 200, 200, 200]
    assert fast[3].json()["replayed"] and fast[3].json()["entry"] == fast[2].json()["entry"]
    assert [fast[4].json()["code"], fast[5].json()["code"], fast[22].json()["code"]] == [
        "idempotency_conflict",
        "duplicate_order",
        "unknown_order",
    ]
    assert fast[26].json()["entry"]["points"] == 0  # already fully reversed
    assert 'route="/v1/customers/{customer_id}/loyalty/earn",status="200"' in fast[-1].text
    assert 'centric_errors_total{code="duplicate_order"} 1.0' in fast[-1].text
    assert 'centric_errors_total{code="duplicate_order"} 1.0' in routed[-1].text


def test_fast_write_reloads_the_script_after_a_flush(redis_url: str, keys: Keys) -> None:
    w = bearer(redis_url, keys, "write")

    async def body() -> list[httpx.Response]:
        app = create_app(Settings(redis_url=redis_url, env=keys.env, loyalty_program=PROGRAM), gc_tuning=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http,
        ):
            first = await http.post(
                "/v1/customers/s1/loyalty/earn",
                json={"order_id": "a", "amount": "5"},
                headers={**w, "Idempotency-Key": "a"},
            )
            await app.state.redis.script_flush()
            second = await http.post(
                "/v1/customers/s1/loyalty/earn",
                json={"order_id": "b", "amount": "5"},
                headers={**w, "Idempotency-Key": "b"},
            )
            before = await _script_commands(app.state.redis)
            third = await http.post(
                "/v1/customers/s1/loyalty/earn",
                json={"order_id": "c", "amount": "5"},
                headers={**w, "Idempotency-Key": "c"},
            )
            assert await _script_commands(app.state.redis) == before  # one round trip: no SCRIPT EXISTS
            return [first, second, third]

    first, second, third = asyncio.run(body())
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert third.json()["balance"] == second.json()["balance"] + 5 == first.json()["balance"] + 10


async def _script_commands(client: Any) -> int:
    stats = await client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_script"))


def test_the_customer_index_is_kept_with_one_command_per_write(
    redis_url: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = bearer(redis_url, keys, "write")
    client = redis.Redis.from_url(redis_url)

    def sadds() -> int:
        return client.info("commandstats").get("cmdstat_sadd", {}).get("calls", 0)

    async def body() -> list[int]:
        app = create_app(Settings(redis_url=redis_url, env=keys.env, loyalty_program=PROGRAM), gc_tuning=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http,
        ):

            async def earn(n: int) -> None:
                r = await http.post(
                    "/v1/customers/x1/loyalty/earn",
                    json={"order_id": f"o{n}", "amount": "5"},
                    headers={**w, "Idempotency-Key": f"k{n}"},
                )
                assert r.status_code == 200, r.text

            counts = [sadds()]
            for n in range(3):
                await earn(n)
                counts.append(sadds())
            # a data reset behind the service's back: the ledger and the index are gone
            client.delete(keys.loyalty_customers(), *ledger_keys(keys, "x1"))
            await earn(3)  # the ledger's first entry again: indexed at once
            counts.append(sadds())
            monkeypatch.setattr(app.state.loyalty.flow.index, "ttl_s", 0.0)
            await earn(4)  # past the time to live: indexed again
            counts.append(sadds())
            return counts

    try:
        counts = asyncio.run(body())
        assert [b - a for a, b in itertools.pairwise(counts)] == [1, 0, 0, 1, 1]
        assert client.smembers(keys.loyalty_customers()) == {b"x1"}
    finally:
        client.close()
