"""Rate limits: per API key (a token bucket in Redis) and per client address for key lookups (in process).

**Per key.** Each key has one token bucket in Redis (``recsys/store/lua/rate_limit.lua``, key
``Keys.rate_limit``): ``rate`` tokens a second up to ``burst``. Redis holds it, so the limit is the same with any
number of workers and replicas, and the script takes time from the server's ``TIME``. A worker does not ask Redis
for every request: it takes a *lease* of up to ``rate / 20`` tokens (50 ms of the rate) and spends it locally for at
most ``LEASE_S``; a worker therefore overshoots the key's rate by at most one lease, and Redis sees one call per lease.
A refused request gets 429 with ``Retry-After`` (whole seconds, rounded up). While Redis is unreachable, requests are
not refused for their rate (reads answer degraded; writes fail with 503 anyway).

**Per client address.** A key that is not in the in-process cache costs a Redis lookup. ``AddressLimiter`` allows
``rate`` *failed* lookups (unknown key id, wrong secret) a second per client address (burst ``2 × rate``) in each
worker; once they are used up, a request with an uncached key from that address gets 429 without touching Redis.
Valid keys never use them up, so many clients behind one address (a NAT, a backend) are not refused. Unknown key
ids are also remembered for a short time (``serving.auth.KeyCache``), so the same wrong key sent again costs
nothing, and concurrent lookups of one key id share one Redis call.

Why a small Lua bucket and not a library: the limiters on PyPI for Starlette (slowapi, limits) send one Redis
command per request and cannot share our multiplexed connection; the bucket is 20 lines of Lua beside our others.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from redis.exceptions import RedisError

from recsys.store import scripts
from recsys.store.keys import Keys

LEASE_S = 1.0  # a lease's tokens are forfeit after this long (a worker cannot bank them)
_MAX_ENTRIES = 10_000  # bound on tracked keys / addresses: random ids cannot grow memory


class RateLimited(HTTPException):
    """429 with ``Retry-After``: too many requests for this key, or too many key lookups from this address."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(status_code=429, detail=detail, headers={"Retry-After": str(seconds)})
        self.code = "rate_limited"
        self.retry_after_s = seconds


class KeyRateLimiter:
    """Per-key token buckets in Redis, spent through local leases (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        rate: float,
        burst: int,
        *,
        mux: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis, self.keys, self.rate, self.burst, self.mux, self.clock = redis, keys, rate, burst, mux, clock
        self.lease = max(1, min(burst, math.ceil(rate / 20)))
        self._leases: dict[str, tuple[int, float]] = {}  # key id -> (tokens left, lease expiry)
        self._refused_until: dict[str, float] = {}  # key id -> when Redis said a token will be there
        self._inflight: dict[str, asyncio.Future[None]] = {}  # key id -> the lease being taken now

    @property
    def enabled(self) -> bool:
        """Whether limits apply (a rate of 0 turns them off)."""
        return self.rate > 0

    async def check(self, key_id: str) -> None:
        """Admit one request of ``key_id`` or raise ``RateLimited``; a Redis failure admits it."""
        if not self.enabled:
            return
        while True:
            now = self.clock()
            left, expiry = self._leases.get(key_id, (0, 0.0))
            if left > 0 and expiry > now:
                self._leases[key_id] = (left - 1, expiry)
                return
            until = self._refused_until.get(key_id, 0.0)
            if until > now:  # Redis already said no: do not ask again before a token can be there
                raise self._refusal(key_id, until - now)
            pending = self._inflight.get(key_id)
            if pending is None:
                break
            # another request of this key is taking a lease: wait for it and spend from it (one call, not many)
            with contextlib.suppress(RedisError, OSError):
                await asyncio.shield(pending)
            if pending.exception() is not None:
                return
        pending = asyncio.get_running_loop().create_future()
        self._inflight[key_id] = pending
        try:
            granted, wait_ms = await self._take(key_id)
        except (RedisError, OSError) as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: waiters see it, nobody is warned
            return
        finally:
            self._inflight.pop(key_id, None)
            if not pending.done():
                pending.set_result(None)
        if granted <= 0:
            if len(self._refused_until) >= _MAX_ENTRIES:
                self._refused_until.clear()
            self._refused_until[key_id] = now + wait_ms / 1000
            raise self._refusal(key_id, wait_ms / 1000)
        if len(self._leases) >= _MAX_ENTRIES:
            self._leases.clear()
        self._leases[key_id] = (granted - 1, now + LEASE_S)

    async def _take(self, key_id: str) -> tuple[int, int]:
        bucket, args = [self.keys.rate_limit(key_id)], [self.rate, self.burst, self.lease]
        if self.mux is not None:
            (reply,) = await scripts.aexecute(self.mux.execute, self.redis, [scripts.RATE_LIMIT.command(bucket, args)])
        else:
            reply = await scripts.arun(self.redis, scripts.RATE_LIMIT, bucket, args)
        return int(reply[0]), int(reply[1])

    def _refusal(self, key_id: str, wait_s: float) -> RateLimited:
        return RateLimited(
            f"rate limit of API key {key_id} exceeded ({self.rate:g} requests/s, burst {self.burst}); "
            "retry after the time in Retry-After",
            wait_s,
        )


class AddressLimiter:
    """In-process token buckets per client address (key lookups in Redis); bounded in memory."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(1.0, 2 * rate), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, last refill)

    def _tokens(self, address: str, now: float) -> float:
        tokens, last = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def check(self, address: str) -> None:
        """Raise ``RateLimited`` if ``address`` has used up its failed lookups (spends nothing)."""
        if self.rate <= 0:
            return
        tokens = self._tokens(address, self.clock())
        if tokens < 1:
            raise RateLimited(
                f"too many unknown or wrong API keys from {address} ({self.rate:g} a second); "
                "use a valid key and retry after the time in Retry-After",
                (1 - tokens) / self.rate,
            )

    def spend(self, address: str) -> None:
        """Count one failed lookup (an unknown key id, a wrong secret) against ``address``."""
        if self.rate <= 0:
            return
        now = self.clock()
        tokens = self._tokens(address, now)
        if len(self._buckets) >= _MAX_ENTRIES and address not in self._buckets:
            self._buckets.clear()
        self._buckets[address] = (tokens - 1, now)
