"""``MuxRedis``: replies in order under concurrency, redis-py's error types, reconnects, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from serving.hotpath.redis_mux import MuxRedis
from serving.redis_client import create_client


def test_replies_match_their_commands_under_concurrency(redis_url: str, redis_client: redis.Redis) -> None:
    redis_client.hset("mux:test:h", mapping={f"f{i}": f"v{i}" for i in range(300)})
    redis_client.hset("mux:test:r", mapping={"a": "1.5"})

    async def body() -> None:
        mux = MuxRedis.for_client(create_client(redis_url))
        assert mux is not None
        try:
            got = await asyncio.gather(*(mux.execute(("HGET", "mux:test:h", f"f{i}")) for i in range(300)))
            assert got == [[f"v{i}".encode()] for i in range(300)]
            assert await mux.execute(
                ("HGET", "mux:test:h", "nope"), ("HGETALL", "mux:test:r"), ("HGETALL", "mux:test:none")
            ) == [None, [b"a", b"1.5"], []]
            with pytest.raises(ResponseError):
                await mux.execute(("HGET", "mux:test:h", "f1"), ("INCR", "mux:test:h"))
            assert await mux.execute(("HGET", "mux:test:h", "f2")) == [b"v2"]  # still in step after an error reply
        finally:
            await mux.aclose()
            redis_client.delete("mux:test:h", "mux:test:r")

    asyncio.run(body())


def test_reconnects_after_the_connection_drops_and_selects_the_db(redis_url: str, redis_client: redis.Redis) -> None:
    url3 = redis_url.rsplit("/", 1)[0] + "/3"
    other = redis.Redis.from_url(url3)
    other.set("mux:test:db3", "three")

    async def body() -> None:
        mux = MuxRedis.for_client(create_client(url3))
        assert mux is not None and mux.db == 3
        try:
            assert await mux.execute(("CLIENT", "SETNAME", "muxtest"), ("GET", "mux:test:db3")) == [b"OK", b"three"]
            for line in redis_client.client_list():
                if line.get("name") == "muxtest":
                    redis_client.client_kill_filter(_id=line["id"])
            with pytest.raises(RedisConnectionError):
                for _ in range(100):  # the drop is seen on the next read at the latest
                    await mux.execute(("GET", "mux:test:db3"))
                    await asyncio.sleep(0.01)
            assert await mux.execute(("GET", "mux:test:db3")) == [b"three"]
        finally:
            await mux.aclose()
            other.delete("mux:test:db3")

    asyncio.run(body())


def test_refused_connection_and_silent_server_raise_redis_errors() -> None:
    async def body() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
        port = server.sockets[0].getsockname()[1]
        mux = MuxRedis(host="127.0.0.1", port=port, socket_timeout=0.2)
        with pytest.raises(RedisTimeoutError):
            await mux.execute(("GET", "k"))
        await mux.aclose()
        server.close()
        await server.wait_closed()
        with pytest.raises(RedisConnectionError):
            await MuxRedis(host="127.0.0.1", port=port).execute(("GET", "k"))

    asyncio.run(body())


def test_settings_it_cannot_honour_fall_back_to_redis_py() -> None:
    assert MuxRedis.for_client(aioredis.Redis.from_url("rediss://127.0.0.1:1")) is None
    assert MuxRedis.for_client(aioredis.Redis.from_url("redis://127.0.0.1:1", decode_responses=True)) is None
    assert MuxRedis.for_client(aioredis.Redis.from_url("redis://127.0.0.1:1", protocol=3)) is None
    unix = MuxRedis.for_client(create_client("unix:///tmp/x.sock"))
    assert unix is not None and unix.path == "/tmp/x.sock"
    plain = MuxRedis.for_client(aioredis.Redis.from_url("redis://u:pw@127.0.0.1:7/2"))
    assert plain is not None and (plain.port, plain.db, plain.username, plain.password) == (7, 2, "u", "pw")


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
