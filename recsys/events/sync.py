"""Drain the events stream into the event store through a Redis consumer group, exactly once.

One batch, in order:

0. on start: recover the store (delete files of an uncommitted batch) and set the group's position
   (``XGROUP SETID``) to the store's checkpoint, so whatever a killed sync read but never committed is read again;
1. ``XREADGROUP … NOACK`` up to ``batch`` entries after that position;
2. write them to the store and commit its checkpoint (durable: fsynced files, then an atomic rename);
3. in one pipelined round trip: ``XTRIM MINID`` up to the checkpoint, record the synced id in
   ``keys.events_sync_state()``, and ``XREADGROUP`` the next batch.

The store's checkpoint is the acknowledgement (hence ``NOACK``: no pending list to ``XACK`` id by id). A kill at
any point loses nothing (Redis keeps every entry until step 3, after the commit) and duplicates nothing (step 0).
The stream is only ever trimmed up to what is stored. Replies are read raw (no per-entry dicts from redis-py),
and the service's one-JSON-field entries are parsed by polars in one call per batch.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl
import redis
from redis.exceptions import ResponseError

from recsys.events.store import EVENT_SCHEMA, STRING_FIELDS, Checkpoint, EventStore, next_id, parse_id
from recsys.store.keys import Fields, Keys

CONSUMER = "sync"  # one writer per store (the store's lock), so one consumer name: its pending list survives a crash
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"
_KNOWN = {name.encode() for name in (*STRING_FIELDS, "quantity", "price", "p_shown", "timestamp")}
_EVENT = Fields.EVENT.encode()
_JSON_FIELDS = (_EVENT, b"data")  # entries written as one JSON object (also read by `centric report`)


@dataclass
class SyncResult:
    """What one ``sync_events`` call did."""

    events: int = 0  # events written to the store
    skipped: int = 0  # entries already in the store (delivered again after a crash), acknowledged only
    batches: int = 0
    seconds: float = 0.0
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    backlog: int = 0  # entries left in the stream when the call returned

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "events": self.events,
            "skipped": self.skipped,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds > 0 else None,
            "last_id": self.checkpoint.last_id,
            "stored_events": self.checkpoint.events,
            "backlog": self.backlog,
        }


def _raw(client: redis.Redis | redis.RedisCluster, stream: str) -> redis.Redis:
    """A client on the same pool whose stream replies are left as redis sends them (no per-entry dicts).

    On a Redis Cluster every command of the sync is on the stream's slot (the sync state shares its hash tag), so
    this is the client of the master serving that slot; a failover during a sync fails it (rerun: nothing is lost).
    """
    if isinstance(client, redis.RedisCluster):
        client = client.get_node_from_key(stream).redis_connection
    raw = redis.Redis(connection_pool=client.connection_pool)
    for command in ("XREADGROUP", "XACK", "XTRIM"):
        raw.set_response_callback(command, lambda response, **_: response)
    return raw


def _decode_json_entry(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
    payload = next((fields[name] for name in _JSON_FIELDS if name in fields), None)
    try:
        event = orjson.loads(payload) if payload is not None else None
    except orjson.JSONDecodeError:
        return fields
    if not isinstance(event, dict):
        return fields
    out = {k: v for k, v in fields.items() if k not in _JSON_FIELDS}
    for key, value in event.items():
        if value is not None:
            out[str(key).encode()] = value.encode() if isinstance(value, str) else orjson.dumps(value)
    return out


def entries_frame(entries: list[Any]) -> pl.DataFrame:
    """Return raw ``XREADGROUP`` entries (``[id, [field, value, …]]``) as a frame of ``EVENT_SCHEMA``.

    Entries written by the service hold one JSON field (``event``): their payloads are joined and parsed by polars
    in one call. Entries with flat fields (older services, other producers) are read field by field. Fields outside
    the schema keep their text in ``extra`` (JSON). Typed fields that do not parse (a quantity of ``"two"``) become
    null, and the history's validation rejects those rows with a reason.
    """
    ids = [entry[0] for entry in entries]
    if all(flat and len(flat) == 2 and flat[0] == _EVENT for _, flat in entries):
        frame = _json_frame([flat[1] for _, flat in entries])
    else:
        frame = _flat_frame(entries)
    ms = pl.col("stream_id").str.split_exact("-", 1).struct.field("field_0").cast(pl.Int64)
    return (
        frame.with_columns(
            pl.Series("stream_id", ids, dtype=pl.Binary).cast(pl.String),
        )
        .with_columns(
            pl.from_epoch(ms, time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias("received_at"),
            pl.col("quantity").cast(pl.Float64, strict=False),
            pl.col("price").cast(pl.Float64, strict=False),
            pl.col("p_shown").cast(pl.Float64, strict=False),
            pl.col("timestamp").str.to_datetime(TIMESTAMP_FORMAT, strict=False, time_unit="us", time_zone="UTC"),
        )
        .select(list(EVENT_SCHEMA))
    )


_TEXT_FIELDS = (*STRING_FIELDS, "quantity", "price", "p_shown", "timestamp")


def _json_frame(payloads: list[bytes]) -> pl.DataFrame:
    # The service writes only schema fields (its request model forbids others), so the schema is given rather than
    # inferred (inference costs more than the parse). Entries that other producers write this way keep only schema
    # fields; flat-field entries keep unknown fields in ``extra``.
    try:
        parsed = pl.read_ndjson(io.BytesIO(b"\n".join(payloads)), schema=dict.fromkeys(_TEXT_FIELDS, pl.String))
    except pl.exceptions.PolarsError:
        parsed = None
    if parsed is None or parsed.height != len(payloads):
        return _flat_frame([(b"0-0", [_EVENT, payload]) for payload in payloads])
    return parsed.with_columns(pl.lit(None, dtype=pl.String).alias("extra"))


def _flat_frame(entries: list[Any]) -> pl.DataFrame:
    rows: list[dict[bytes, bytes]] = []
    extras: list[bytes | None] = []
    for _, flat in entries:
        fields = dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}
        if b"type" not in fields and any(name in fields for name in _JSON_FIELDS):
            fields = _decode_json_entry(fields)
        unknown = fields.keys() - _KNOWN
        extras.append(
            orjson.dumps({k.decode(): v.decode("utf-8", "replace") for k, v in fields.items() if k in unknown})
            if unknown
            else None
        )
        rows.append(fields)
    columns = {
        name: pl.Series(name, [row.get(name.encode()) for row in rows], dtype=pl.Binary).cast(pl.String)
        for name in _TEXT_FIELDS
    }
    columns["extra"] = pl.Series("extra", extras, dtype=pl.Binary).cast(pl.String)
    return pl.DataFrame(columns)


def ensure_group(client: redis.Redis, keys: Keys, start_id: str) -> None:
    """Create the sync consumer group (and the stream) if missing, starting after ``start_id``."""
    try:
        client.xgroup_create(keys.events_stream(), keys.events_sync_group(), id=start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def backlog(client: redis.Redis, keys: Keys) -> int:
    """Return the number of events in the stream not yet in the event store (the stream holds only those)."""
    return int(client.xlen(keys.events_stream()))


def _read(pipe: Any, keys: Keys, count: int, block_ms: int | None) -> None:
    args: list[Any] = ["XREADGROUP", "GROUP", keys.events_sync_group(), CONSUMER, "COUNT", count]
    if block_ms is not None:
        args += ["BLOCK", block_ms]
    pipe.execute_command(*args, "NOACK", "STREAMS", keys.events_stream(), ">")


def _entries(reply: Any) -> list[Any]:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3, or a redis-py that maps the reply by stream already
        return [entry for entries in reply.values() for entry in _unwrap(entries)]
    return list(reply[0][1])


def _unwrap(entries: Any) -> list[Any]:
    # redis-py may wrap a stream's entries in one more list
    if len(entries) == 1 and entries[0] and isinstance(entries[0][0], list):
        return list(entries[0])
    return list(entries)


def sync_events(
    client: redis.Redis,
    keys: Keys,
    store: EventStore,
    *,
    batch: int = 20_000,
    follow: bool = False,
    block_ms: int = 2000,
    on_batch: Callable[[SyncResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyncResult:
    """Move every event of the stream into ``store``; return what was done.

    Without ``follow`` it returns once the stream is drained; with it, it waits for new events until
    ``should_stop()`` is true. Raises ``ConfigError`` if another sync holds the store, ``RedisError`` when Redis
    fails (nothing is lost: rerun).
    """
    started = time.perf_counter()
    result = SyncResult()
    stop = should_stop or (lambda: False)
    stream, group = keys.events_stream(), keys.events_sync_group()
    with store.locked():
        store.recover()
        result.checkpoint = store.checkpoint()
        ensure_group(client, keys, result.checkpoint.last_id)
        # the store's checkpoint is the acknowledgement: whatever a dead sync read but never committed is read again
        client.xgroup_setid(stream, group, result.checkpoint.last_id)
        raw = _raw(client, stream)
        pipe = raw.pipeline(transaction=False)
        _read(pipe, keys, batch, None)
        reply = pipe.execute()[-1]
        while True:
            entries = _entries(reply)
            if not entries:
                if not follow or stop():
                    break
                pipe = raw.pipeline(transaction=False)
                _read(pipe, keys, batch, block_ms)
                reply = pipe.execute()[-1]
                continue
            done = result.checkpoint.key()
            if parse_id(entries[0][0].decode()) <= done:  # only if something moved the group back; never stored twice
                fresh = [entry for entry in entries if parse_id(entry[0].decode()) > done]
                result.skipped += len(entries) - len(fresh)
                entries = fresh
            if entries:
                result.checkpoint = store.append(entries_frame(entries), entries[-1][0].decode())
                result.events += len(entries)
                result.batches += 1
            synced = result.checkpoint.last_id
            pipe = raw.pipeline(transaction=False)
            pipe.execute_command("XTRIM", stream, "MINID", next_id(synced))
            pipe.hset(
                keys.events_sync_state(),
                mapping={
                    Fields.SYNC_ID: synced,
                    Fields.SYNC_EVENTS: result.checkpoint.events,
                    Fields.SYNC_AT: result.checkpoint.updated_at or "",
                },
            )
            if follow and stop():
                pipe.execute()
                break
            _read(pipe, keys, batch, None)  # the next batch rides in the same round trip
            reply = pipe.execute()[-1]
            if on_batch:
                result.seconds = time.perf_counter() - started
                on_batch(result)
        result.backlog = backlog(client, keys)
    result.seconds = time.perf_counter() - started
    return result
