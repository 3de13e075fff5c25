"""Events → the Redis Stream read by the offline side, plus the real-time overlays.

Order of writes: the batch is appended to the stream in one MULTI/EXEC (all or nothing, one key so
Cluster-safe); then purchases are recorded per customer and offer events go to the next-best-action
counters. Those overlays are idempotent for purchases; a failure after the stream write is reported
as 503 so the client retries, never silently dropped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recsys.exceptions import StoreUnavailable
from recsys.store.base import SnapshotReader
from recsys.store.keys import Keys
from serving.services.offer_events import apply_offer_events

STREAM_MAXLEN = 1_000_000  # approximate (MAXLEN ~): the offline side reads far faster than this fills


def _entry(event: dict[str, Any]) -> dict[str, str]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else str(v)) for k, v in event.items() if v is not None}


async def record_events(redis: aioredis.Redis, keys: Keys, store: SnapshotReader, events: list[dict[str, Any]]) -> int:
    """Record a batch of validated events; return how many were accepted. Raises ``StoreUnavailable``."""
    now = dt.datetime.now(dt.UTC)
    for event in events:
        if event.get("timestamp") is None:
            event["timestamp"] = now
    stream = keys.events_stream()
    try:
        async with redis.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.xadd(stream, _entry(event), maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"events not recorded (nothing was written): Redis is unreachable ({exc}); retry the batch") from exc
    purchases = [(e["customer_id"], e["item_id"], e["timestamp"].timestamp()) for e in events if e["type"] == "purchase" and e.get("item_id")]
    try:
        await store.record_purchases(purchases)
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"events were recorded but the purchase overlay was not updated ({exc}); retry the batch") from exc
    offer_events = [e for e in events if e.get("offer_id")]
    if offer_events:
        await apply_offer_events(redis, keys, offer_events)
    return len(events)
