"""The service's Redis client packs commands with hiredis into exactly the bytes redis-py's own packer builds."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from serving.redis_client import HiredisPacking, create_client

COMMANDS = [
    ("SET", "k", "v"),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT LIST",),
    ("ZADD", b"k", 1.5, "m", 1e20, "x", 0.1, "y", -0.0, "z", float("inf"), "w", 12345678901234567890123, "v"),
    ("HSET", "ké", "ö", "é" * 40_000),  # above redis-py's buffer cutoff: it chunks, the bytes are the same
    ("EVALSHA", "0" * 40, 5, *[f"k{i}" for i in range(5)], "earn", "idem", "", "1764000000", "c1", '{"a": [1, 2]}'),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_hiredis_packing_gives_the_same_bytes(args: tuple) -> None:
    fast = create_client("redis://127.0.0.1:1").connection_pool.connection_class()
    assert isinstance(fast, HiredisPacking)
    assert b"".join(fast.pack_command(*args)) == b"".join(Connection().pack_command(*args))


def test_other_arguments_keep_redis_py_errors_and_unix_urls_keep_their_class() -> None:
    fast = create_client("redis://127.0.0.1:1").connection_pool.connection_class()
    for bad in (True, None, object()):
        with pytest.raises(DataError):
            fast.pack_command("SET", "k", bad)
    assert b"".join(fast.pack_command("SET", "k", memoryview(b"v"))) == b"".join(
        Connection().pack_command("SET", "k", b"v")
    )
    unix = create_client("unix:///tmp/redis.sock").connection_pool.connection_class
    assert issubclass(unix, UnixDomainSocketConnection) and issubclass(unix, HiredisPacking)
