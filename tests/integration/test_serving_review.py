"""Regressions from a review (2026-11-30) of the publish -> Redis snapshot -> serving read path.

Every test here failed before its fix; each docstring names the input or interleaving that went wrong then.
"""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from serving.hotpath.redis_mux import MuxRedis
from serving.redis_client import create_client
from training.jobs.publish import run_publish

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from http_helpers import app_client, bearer, write_artifacts


async def _raw_app(redis_url: str, keys: Keys, body: Any) -> Any:
    """Run ``body(http)`` on an app whose unhandled exceptions become 500 responses (as under uvicorn)."""
    app = create_app(Settings(redis_url=redis_url, env=keys.env), gc_tuning=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://centric.test") as http:
            return await body(http)


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


# --- fold-in ----------------------------------------------------------------------------------------


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


# --- retention ---------------------------------------------------------------------------------------


def test_publish_with_keep_1_does_not_pull_the_version_readers_still_serve(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """``keep=1`` (allowed: ``snapshot_keep ge=1``) UNLINKs the previous version right after the pointer moves.

    Workers keep the version they loaded until they re-read the pointer (``pointer_ttl_s``); in that window their
    bucket reads find nothing and a known customer is served the fallback list instead of their own. The test
    widens the window (``pointer_ttl_s``) only to make the interleaving deterministic.
    """
    art = write_artifacts(tmp_path / "art")
    run_publish(redis_client, keys, art, keep=1)
    headers = bearer(redis_url, keys, "read")

    async def body() -> tuple[Any, Any]:
        async with app_client(redis_url, keys) as http:
            http.app.state.store.pointer_ttl_s = 30.0  # type: ignore[attr-defined]
            before = (await http.get("/v1/customers/c1/recommendations", params={"k": 3}, headers=headers)).json()
            await asyncio.to_thread(run_publish, redis_client, keys, art, keep=1)  # the next nightly publish
            during = (await http.get("/v1/customers/c1/recommendations", params={"k": 3}, headers=headers)).json()
            return before, during

    before, during = asyncio.run(body())
    assert all(i["source"] == "personalized" for i in before["items"])
    assert [i["item_id"] for i in during["items"]] == [i["item_id"] for i in before["items"]], during


# --- events --------------------------------------------------------------------------------------------


def test_events_with_infinite_quantity_or_price_are_rejected(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """``quantity: 1e999`` is valid JSON that parses to inf; ``gt=0`` lets it through and the stream gets ``inf``.

    The offline loader rejects non-finite quantities/prices (``non_finite_quantity``), so such events are accepted
    (202) here and silently dropped later.
    """
    run_publish(redis_client, keys, write_artifacts(tmp_path / "art"))
    write = bearer(redis_url, keys, "write")

    async def body(http: httpx.AsyncClient) -> list[int]:
        out = []
        for raw in (
            '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","quantity":1e999}]}',
            '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","price":1e999}]}',
        ):
            response = await http.post("/v1/events", headers={**write, "content-type": "application/json"}, content=raw)
            out.append(response.status_code)
        return out

    assert asyncio.run(_raw_app(redis_url, keys, body)) == [422, 422]
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
    run_publish(redis_client, keys, write_artifacts(tmp_path / "art"))
    write = bearer(redis_url, keys, "write")

    async def body(http: httpx.AsyncClient) -> list[int]:
        out = []
        for raw in (
            '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","timestamp":"9999-12-31T23:00:00-05:00"}]}',
            '{"events":[{"type":"purchase","customer_id":"c1","item_id":"tea","timestamp":"0001-01-01T00:00:00+01:00"}]}',
            '{"events":[{"type":"purchase","customer_id":"\\ud800","item_id":"tea"}]}',
        ):
            response = await http.post("/v1/events", headers={**write, "content-type": "application/json"}, content=raw)
            out.append(response.status_code)
        return out

    assert asyncio.run(_raw_app(redis_url, keys, body)) == [422, 422, 422]


# --- multiplexed connection ---------------------------------------------------------------------------


def test_mux_call_on_a_connection_dropped_right_after_connect_fails_instead_of_hanging(redis_url: str) -> None:
    """The connection drops between ``_open`` returning and the caller queueing its command.

    ``_connect`` hands back the protocol object without checking it is still open; ``_send`` queues the
    command on the closed protocol (``flush`` skips it, ``fail`` already ran) and ``_check_timeouts`` only
    looks at ``self._proto`` (now ``None``), so the call waits forever, past ``socket_timeout``. On Python
    3.11 ``wait_for`` runs ``_open`` as its own task, so an EOF delivered in that gap does this; the test
    delivers it with ``call_soon`` right after the connection is made. Concurrent waiters on the same
    connect hang the same way.
    """

    async def body() -> list[Any]:
        mux = MuxRedis.for_client(create_client(redis_url))
        assert mux is not None
        mux.socket_timeout = 0.3
        real_open = mux._open

        async def open_then_drop(loop: asyncio.AbstractEventLoop) -> Any:
            proto = await real_open(loop)
            loop.call_soon(proto.fail, RedisConnectionError("connection to Redis lost: closed"))  # server closed it
            return proto

        mux._open = open_then_drop  # type: ignore[method-assign]
        try:
            calls = [mux.execute(("PING",)), mux.execute(("PING",))]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 3)
        finally:
            await mux.aclose()

    try:
        results = asyncio.run(body())
    except TimeoutError:
        pytest.fail("MuxRedis.execute hung on a connection that was already closed (socket_timeout did not fire)")
    for result in results:
        assert result == [b"PONG"] or isinstance(result, RedisConnectionError), result


def test_mux_caller_cancelled_while_connecting_does_not_fail_the_other_waiters(redis_url: str) -> None:
    """Request A opens the connection, request B waits on it, A is cancelled (client gone, a timeout) mid-connect.

    ``_connect`` catches ``BaseException``: A's ``CancelledError`` becomes ``RedisConnectionError("cannot connect
    to Redis: CancelledError()")`` set on the shared future, so B (and every request queued behind the connect)
    is answered "Redis unreachable" (degraded fallback / 503) although Redis is up; A itself raises
    ``ConnectionError`` instead of ``CancelledError``, which hides the cancellation from asyncio.timeout().
    """

    async def body() -> tuple[Any, Any]:
        mux = MuxRedis.for_client(create_client(redis_url))
        assert mux is not None
        gate = asyncio.Event()
        real_open = mux._open

        async def slow_open(loop: asyncio.AbstractEventLoop) -> Any:
            await gate.wait()  # a connect that takes a moment (TCP handshake, AUTH, SELECT)
            return await real_open(loop)

        mux._open = slow_open  # type: ignore[method-assign]
        try:
            a = asyncio.create_task(mux.execute(("PING",)))
            await asyncio.sleep(0.01)
            b = asyncio.create_task(mux.execute(("PING",)))
            await asyncio.sleep(0.01)
            a.cancel()
            await asyncio.sleep(0)
            gate.set()
            return tuple(await asyncio.wait_for(asyncio.gather(a, b, return_exceptions=True), 3))  # type: ignore[return-value]
        finally:
            await mux.aclose()

    a, b = asyncio.run(body())
    assert b == [b"PONG"], f"a waiter got {b!r} because another caller was cancelled"
    assert isinstance(a, asyncio.CancelledError), a
