"""Events → the Redis Stream read by the offline side, plus the real-time overlays.

Order of writes: the batch is appended to the stream in one MULTI/EXEC (all or nothing, one key so
Cluster-safe); then purchases are recorded per customer and offer events go to the next-best-action
counters. Those overlays are idempotent for purchases; a failure after the stream write is reported
as 503 so the client retries, never silently dropped.

Each stream entry is one field, ``event``, holding the event as JSON (``centric events sync`` parses a whole
batch of them at once). The stream is never capped here: ``centric events sync`` trims it up to what it has stored.
When the unsynced backlog reaches ``events_backlog_limit`` the batch is refused with 503 (nothing written; the
client keeps the events and retries), so no event is ever dropped unread.

A retry of a partly applied batch would append the stream entries and count offer events again. A batch
sent with an ``Idempotency-Key`` records each completed stage in ``keys.events_batch(key)`` (24 h): the
stream write together with its mark (one MULTI, same slot), then each counter key after its MULTI. A retry
with the same key skips what is done; the same key with other events is refused (409).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
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
BACKLOG_CHECK_S = 1.0  # the stream length is read at most this often per process (one XLEN, not one per batch)
_backlog_seen: dict[str, tuple[float, int]] = {}


def decode_entry(fields: dict[Any, Any]) -> dict[str, str]:
    """Return a stream entry's event as text fields: the one JSON field the service writes, or flat fields."""
    flat = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    payload = flat.get(Fields.EVENT)
    if payload is not None and len(flat) == 1:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            event = None
        if isinstance(event, dict):
            return {str(k): str(v) for k, v in event.items() if v is not None}
    return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in flat.items()}


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


async def events_backlog(redis: aioredis.Redis, keys: Keys) -> int:
    """Return the number of unsynced events (the stream length: sync trims what it stored); cached BACKLOG_CHECK_S."""
    stream = keys.events_stream()
    seen = _backlog_seen.get(stream)
    now = time.monotonic()
    if seen is not None and now - seen[0] < BACKLOG_CHECK_S:
        return seen[1]
    length = int(await redis.xlen(stream))
    _backlog_seen[stream] = (now, length)
    return length


async def _check_backlog(redis: aioredis.Redis, keys: Keys, limit: int) -> None:
    try:
        length = await events_backlog(redis, keys)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(
            f"events not recorded (nothing was written): Redis is unreachable ({exc}); retry the batch"
        ) from exc
    if length >= limit:
        raise StoreUnavailable(
            f"events not recorded (nothing was written): {length:,} events wait for `centric events sync` "
            f"(limit {limit:,}); retry the batch once the sync has caught up"
        )


async def record_events(
    redis: aioredis.Redis,
    keys: Keys,
    store: SnapshotReader,
    events: list[dict[str, Any]],
    idempotency_key: str | None = None,
    backlog_limit: int | None = None,
) -> int:
    """Record a batch of validated events; return how many were accepted.

    With ``idempotency_key``, a retry skips the stages the first try completed. With ``backlog_limit``, a batch is
    refused (``StoreUnavailable``, nothing written) while that many events wait for the sync. Raises
    ``StoreUnavailable``, ``IdempotencyConflict``.
    """
    progress = keys.events_batch(idempotency_key) if idempotency_key else None
    done = await _batch_progress(redis, progress, events) if progress else set()
    if backlog_limit is not None and Fields.BATCH_STREAM not in done:
        await _check_backlog(redis, keys, backlog_limit)
    now = utcnow()
    for event in events:
        if event.get("timestamp") is None:
            event["timestamp"] = now
    stream = keys.events_stream()
    if Fields.BATCH_STREAM not in done:
        try:
            async with redis.pipeline(transaction=True) as pipe:
                for event in events:
                    pipe.xadd(stream, {Fields.EVENT: orjson.dumps(_entry(event))})
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
