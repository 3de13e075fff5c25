"""Run a coroutine function against a fresh ``redis.asyncio`` client (shared by the NBA integration tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from recsys.store.connection import async_client


async def with_client(redis_url: str, func: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
    """Return ``await func(client)`` on a new client for ``redis_url``, closing the client afterwards."""
    client = async_client(redis_url)
    try:
        return await func(client)
    finally:
        await client.aclose()
