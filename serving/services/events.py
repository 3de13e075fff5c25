"""Events → the Redis Stream read by the offline side, plus the real-time overlays.

Order of writes: the batch is appended to the stream in one MULTI/EXEC (all or nothing, one key so
Cluster-safe); then purchases are recorded per customer and offer events go to the next-best-action
counters. Those overlays are idempotent for purchases; a failure after the stream write is reported
as 503 so the client retries, never silently dropped.

A retry of a partly applied batch would append the stream entries and count offer events again. A batch
sent with an ``Idempotency-Key`` records each completed stage in ``keys.events_batch(key)`` (24 h): the
stream write together with its mark (one MULTI, same slot), then each counter key after its MULTI. A retry
with the same key skips what is done; the same key with other events is refused (409).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recsys.clock import utcnow
from recsys.exceptions import IdempotencyConflict, StoreUnavailable
from recsys.store.base import SnapshotReader
from recsys.store.keys import Fields, Keys
from serving.services.offer_events import apply_offer_events

BATCH_TTL_S = 86_400  # how long a batch's Idempotency-Key is remembered
STREAM_MAXLEN = 1_000_000  # approximate (MAXLEN ~): the offline side reads far faster than this fills


def _entry(event: dict[str, Any]) -> dict[str, str]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else str(v)) for k, v in event.items() if v is not None}


async def _batch_progress(redis: aioredis.Redis, key: str, events: list[dict[str, Any]]) -> set[str]:
    """Return the stages a keyed batch completed before; raise ``IdempotencyConflict`` if it held other events."""
    digest = hashlib.sha256(orjson.dumps([_entry(e) for e in events], option=orjson.OPT_SORT_KEYS)).hexdigest()
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, Fields.BATCH_SHA, digest)
            pipe.expire(key, BATCH_TTL_S, nx=True)
            pipe.hgetall(key)
            _, _, state = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(
            f"events not recorded (nothing was written): Redis is unreachable ({exc}); retry the batch"
        ) from exc
    state = {k.decode(): v.decode() for k, v in state.items()}
    if state[Fields.BATCH_SHA] != digest:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different event batch; use a new key")
    return set(state) - {Fields.BATCH_SHA}


async def record_events(
    redis: aioredis.Redis,
    keys: Keys,
    store: SnapshotReader,
    events: list[dict[str, Any]],
    idempotency_key: str | None = None,
) -> int:
    """Record a batch of validated events; return how many were accepted.

    With ``idempotency_key``, a retry skips the stages the first try completed. Raises ``StoreUnavailable``,
    ``IdempotencyConflict``.
    """
    progress = keys.events_batch(idempotency_key) if idempotency_key else None
    done = await _batch_progress(redis, progress, events) if progress else set()
    now = utcnow()
    for event in events:
        if event.get("timestamp") is None:
            event["timestamp"] = now
    stream = keys.events_stream()
    if Fields.BATCH_STREAM not in done:
        try:
            async with redis.pipeline(transaction=True) as pipe:
                for event in events:
                    pipe.xadd(stream, _entry(event), maxlen=STREAM_MAXLEN, approximate=True)
                if progress:
                    pipe.hset(progress, Fields.BATCH_STREAM, 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(
                f"events not recorded (nothing was written): Redis is unreachable ({exc}); retry the batch"
            ) from exc
    purchases = [
        (e["customer_id"], e["item_id"], e["timestamp"].timestamp())
        for e in events
        if e["type"] == "purchase" and e.get("item_id")
    ]
    try:
        await store.record_purchases(purchases)
    except StoreUnavailable as exc:
        raise StoreUnavailable(
            f"events were recorded but the purchase overlay was not updated ({exc}); retry the batch"
        ) from exc
    offer_events = [e for e in events if e.get("offer_id")]
    if offer_events:
        await apply_offer_events(redis, keys, offer_events, progress=progress, done=done)
    return len(events)
