"""The dashboard's figure cache: computed once, kept in the process and in Redis, answered stale while revalidated.

Figures over every loyalty member (tiers, liability, the ledger's monthly history, offer suppressions) take a scan
of the ledger: a second or more on the Complete Journey demo. Each computed figure is kept in this process and
written to Redis (``Keys.ui_figure``) with the time it was computed, so that a freshly started process (a restart, a
new replica) answers its first page from the figure another process computed, instead of scanning the ledger while
the page waits, and refreshes it behind the page once it is older than its TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass
class Cached:
    """A computed value and the wall-clock time (epoch seconds) it was computed at."""

    value: Any
    at: float


@dataclass
class DashboardCache:
    """Figures by name → ``Cached``; one computation at a time per name; ``redis``/``keys`` to share them.

    A value older than its TTL is still answered at once while one background task recomputes it (stale while
    revalidate), so a page never waits for a scan of the ledger once the figure exists in this process or in Redis;
    a value older than ``MAX_STALE_S`` is recomputed before answering. Pages show when each figure was computed.
    Without ``redis`` the cache is per process only.
    """

    redis: Any = None
    keys: Any = None
    entries: dict[str, Cached] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    refreshing: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    # bumped by ``forget``: a computation that began before it read the data the change made stale, so it is not kept
    generations: dict[str, int] = field(default_factory=dict)

    MAX_STALE_S = 3600.0
    # a refresh starts this long after the page that found the figure stale, so that page is sent first
    REFRESH_DELAY_S = 0.3

    async def get(self, name: str, ttl_s: float, compute: Callable[[], Awaitable[Any]]) -> Any:
        """Return the value of ``name``: cached (here or in Redis) if younger than ``ttl_s``, stale (refreshed behind)
        if younger than ``MAX_STALE_S``, else computed now."""
        hit = self.entries.get(name) or await self.load(name)
        if hit is not None:
            age = time.time() - hit.at
            if age < ttl_s:
                return hit.value
            if age < max(self.MAX_STALE_S, ttl_s):
                task = self.refreshing.get(name)
                if task is None or task.done():
                    self.refreshing[name] = asyncio.create_task(self._refresh(name, compute))
                return hit.value
        return await self._locked(name, compute, ttl_s)

    async def load(self, name: str) -> Cached | None:
        """Return the figure ``name`` as stored in Redis (and keep it here), or ``None`` (absent, unreadable)."""
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(self.keys.ui_figure(name))
        except (RedisError, OSError) as exc:
            log.info("dashboard figure %s not read from Redis: %s", name, exc)
            return None
        if raw is None:
            return None
        try:
            stored = orjson.loads(raw)
            hit = Cached(stored["value"], float(stored["at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        current = self.entries.get(name)
        if current is None or current.at < hit.at:
            self.entries[name] = hit
        return self.entries[name]

    async def _refresh(self, name: str, compute: Callable[[], Awaitable[Any]]) -> None:
        await asyncio.sleep(self.REFRESH_DELAY_S)
        try:
            await self._locked(name, compute)
        except Exception as exc:  # a failed refresh keeps the stale value; the next page view tries again
            log.warning("dashboard figure %s not refreshed: %s", name, exc)

    async def _locked(self, name: str, compute: Callable[[], Awaitable[Any]], ttl_s: float | None = None) -> Any:
        lock = self.locks.setdefault(name, asyncio.Lock())
        async with lock:
            hit = self.entries.get(name)
            if ttl_s is not None and hit is not None and time.time() - hit.at < ttl_s:
                return hit.value  # computed by the request that held the lock
            generation = self.generations.get(name, 0)
            value = await compute()
            if self.generations.get(name, 0) == generation:
                self.entries[name] = Cached(value, time.time())
                await self._store(name)
            return value

    async def _store(self, name: str) -> None:
        if self.redis is None:
            return
        hit = self.entries[name]
        try:
            blob = orjson.dumps({"at": hit.at, "value": hit.value})
            await self.redis.set(self.keys.ui_figure(name), blob, ex=int(self.MAX_STALE_S))
        except (RedisError, OSError, TypeError) as exc:  # sharing is a head start; this process keeps its copy
            log.info("dashboard figure %s not written to Redis: %s", name, exc)

    async def forget(self, name: str) -> None:
        """Drop ``name`` here and in Redis so that the next read computes it (after a change this process made); a
        computation of ``name`` still running (a refresh behind a page) answers its caller but is not kept."""
        self.generations[name] = self.generations.get(name, 0) + 1
        self.entries.pop(name, None)
        if self.redis is None:
            return
        try:
            await self.redis.delete(self.keys.ui_figure(name))
        except (RedisError, OSError) as exc:
            log.info("dashboard figure %s not dropped from Redis: %s", name, exc)


def cache_of(app: Any) -> DashboardCache:
    """Return the app's dashboard cache (made on first use, on the app's Redis; shared by the API and the web UI)."""
    cache = getattr(app.state, "dashboard_cache", None)
    if cache is None:
        state = app.state
        cache = state.dashboard_cache = DashboardCache(getattr(state, "redis", None), getattr(state, "keys", None))
    return cache
