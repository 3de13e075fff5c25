"""``MuxRedis``: replies in order under concurrency, redis-py's error types, reconnects, timeouts."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from serving.redis_client import create_client
from serving.hotpath.redis_mux import MuxRedis


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
