"""``RedisSnapshotReader``: async reads through the active version, for the service.

Each process keeps the active version's small tables (metadata, items, labels, fallbacks) in memory
and re-reads the pointer at most every ``pointer_ttl_s`` seconds, so a request costs one pipelined
round trip for its per-customer data. A new version is loaded fully before requests see it. When
Redis is unreachable, the loaded version keeps answering what it holds in memory (fallback lists,
items) and per-customer reads raise ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson
import polars as pl
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recsys.exceptions import NoActiveSnapshot, StoreUnavailable
from recsys.store import codec, scripts
from recsys.store.base import ItemTable, OfferCatalog, OfferDecision, OfferDecisions, RankedItem, RankedList
from recsys.store.keys import Fields, Keys
from recsys.store.prepare import fallback_reason

RECENT_TTL_S = 30 * 86_400  # fresh purchases matter until a newer snapshot has learned from them


@dataclass
class VersionState:
    """The in-memory part of one version."""

    version: str
    info: dict[str, Any]
    created_at_s: float
    list_dtype: np.dtype
    row_format: str
    table: ItemTable
    labels: list[tuple[str, str]]
    fallbacks: dict[str, RankedList]
    profile_codec: codec.ProfileCodec | None
    buckets: dict[str, int]
    offer_catalog: list[dict[str, Any]] | None
    models: dict[str, bytes] | None = None
    dashboard: dict[str, Any] | None = None  # {"dashboard", "experiments"}, read once per version on first use
    loaded_at: float = field(default_factory=time.monotonic)


class Multiplexer(Protocol):
    """A lean connection for short reads (``serving.hotpath.redis_mux.MuxRedis``): commands sent in one write, replies
    returned."""

    async def execute(self, *commands: tuple[Any, ...]) -> list[Any]: ...


def _errors(exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"Redis is unreachable: {exc}")


class RedisSnapshotReader:
    """Reader side of the snapshot store (``SnapshotReader``) on a ``redis.asyncio`` client."""

    def __init__(
        self, client: aioredis.Redis, keys: Keys, *, pointer_ttl_s: float = 1.0, mux: Multiplexer | None = None
    ) -> None:
        self.client = client
        self.mux = mux  # when set, the per-request reads go through it instead of the redis-py client
        self.keys = keys
        self.pointer_ttl_s = pointer_ttl_s
        self._state: VersionState | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> VersionState | None:
        """The version held in memory (possibly stale when Redis is down), or ``None``."""
        return self._state

    async def refresh(self) -> VersionState:
        """Re-read the pointer now and load a new version if it moved; return the current state."""
        self._checked = 0.0
        return await self._current()

    async def _current(self) -> VersionState:
        state = self._state
        if state is not None and time.monotonic() - self._checked < self.pointer_ttl_s:
            return state
        async with self._lock:
            state = self._state
            if state is not None and time.monotonic() - self._checked < self.pointer_ttl_s:
                return state
            try:
                raw = await self.client.get(self.keys.snapshot_pointer())
            except (RedisError, OSError) as exc:
                if state is not None:
                    # Keep serving what we hold, and retry the pointer only after pointer_ttl_s, so an
                    # outage costs one failed GET per interval rather than one per request.
                    self._checked = time.monotonic()
                    return state
                raise _errors(exc) from exc
            if raw is None:
                raise NoActiveSnapshot("no active snapshot; publish one with `centric publish DIR`")
            version = raw.decode()
            if state is None or state.version != version:
                self._state = state = await self._load(version)
            self._checked = time.monotonic()
            return state

    async def _load(self, version: str) -> VersionState:
        k = self.keys
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hget(k.snapshot_meta(version), Fields.META_INFO)
                for name in ("items", "labels", "fallbacks", "offer_catalog"):
                    pipe.get(k.snapshot_table(version, name))
                info_raw, items_raw, labels_raw, fallbacks_raw, catalog_raw = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc
        if info_raw is None or items_raw is None:
            raise NoActiveSnapshot(f"active version {version} has expired or is incomplete; publish again or roll back")
        # Decoding a large item table takes a while; keep it off the event loop.
        return await asyncio.to_thread(
            _build_state, version, info_raw, items_raw, labels_raw, fallbacks_raw, catalog_raw
        )

    # --- SnapshotReader -----------------------------------------------------------------
    async def version(self) -> str:
        """Return the active version id; raises ``NoActiveSnapshot`` / ``StoreUnavailable``."""
        return (await self._current()).version

    def _decode(self, state: VersionState, blob: bytes) -> list[RankedItem]:
        ids, labels = state.table.ids, state.labels
        return [RankedItem(ids[p], s, *labels[lab]) for p, s, lab in struct.iter_unpack(state.row_format, blob)]

    def _bucket_key(self, state: VersionState, kind: str, owner: str) -> str | None:
        n = state.buckets.get(kind)
        if not n:
            return None
        return self.keys.snapshot_bucket(state.version, kind, codec.bucket_of(owner, n))

    async def recommendations(self, customer_id: str) -> tuple[RankedList | None, dict[str, float]]:
        """Return the customer's published list (or ``None``) and purchases recorded since (item → epoch s).

        One script call (or, through ``mux``, two commands in one write) reads both keys: they share the
        customer's hash tag (see ``Keys``), so this is one round trip to one node, also on Redis Cluster.
        """
        state = await self._current()
        key = self._bucket_key(state, "recs", customer_id)
        recent_key = self.keys.recent_purchases(customer_id)
        try:
            if self.mux is not None:
                # Both commands in one write: one round trip (both keys share the customer's hash tag, one node).
                if key:
                    blob, flat = await self.mux.execute(("HGET", key, customer_id), ("HGETALL", recent_key))
                else:
                    blob, (flat,) = None, await self.mux.execute(("HGETALL", recent_key))
            elif key:
                blob, flat = await scripts.arun(self.client, scripts.READ_RECS, [key, recent_key], [customer_id])
            else:
                blob, flat = None, await self.client.execute_command("HGETALL", recent_key)
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc
        if isinstance(flat, dict):
            recent = {item.decode(): float(ts) for item, ts in flat.items()}
        else:
            recent = {flat[i].decode(): float(flat[i + 1]) for i in range(0, len(flat), 2)}
        ranked = RankedList(state.version, self._decode(state, blob)) if blob is not None else None
        return ranked, recent

    async def similar(self, item_id: str) -> RankedList | None:
        """Return the item's similar items, or ``None``."""
        state = await self._current()
        key = self._bucket_key(state, "sim", item_id)
        if key is None:
            return None
        try:
            blob = await self._hget(key, item_id)
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc
        return RankedList(state.version, self._decode(state, blob)) if blob is not None else None

    async def _hget(self, key: str, field: str) -> bytes | None:
        if self.mux is not None:
            return (await self.mux.execute(("HGET", key, field)))[0]
        return await self.client.hget(key, field)

    async def fallback(self, name: str) -> RankedList | None:
        """Return a fallback list held in memory, or ``None``."""
        return (await self._current()).fallbacks.get(name)

    async def fallback_names(self) -> list[str]:
        """Return the fallback list names of the active version."""
        return sorted((await self._current()).fallbacks)

    async def profile(self, customer_id: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(version, profile)`` or ``None``."""
        state = await self._current()
        key = self._bucket_key(state, "prof", customer_id)
        if key is None or state.profile_codec is None:
            return None
        try:
            blob = await self._hget(key, customer_id)
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc
        return (state.version, state.profile_codec.decode(blob)) if blob is not None else None

    async def items(self) -> ItemTable:
        """Return the active version's item table."""
        return (await self._current()).table

    async def record_purchases(self, purchases: list[tuple[str, str, float]]) -> None:
        """Remember purchases per customer (hash item → epoch seconds, with a TTL). Raises ``StoreUnavailable``."""
        if not purchases:
            return
        by_customer: dict[str, dict[str, float]] = {}
        for customer_id, item_id, ts in purchases:
            by_customer.setdefault(customer_id, {})[item_id] = ts
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for customer_id, bought in by_customer.items():
                    key = self.keys.recent_purchases(customer_id)
                    pipe.hset(key, mapping=bought)
                    pipe.expire(key, RECENT_TTL_S)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc

    async def get_customer_offers(self, customer_id: str) -> OfferDecisions:
        """Return the customer's published decisions (none when the customer has none)."""
        state = await self._current()
        key = self._bucket_key(state, "offers", customer_id)
        if key is None:
            return OfferDecisions(state.version, [])
        try:
            blob = await self.client.hget(key, customer_id)
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc
        rows = orjson.loads(blob) if blob else []
        return OfferDecisions(state.version, [OfferDecision.from_row(r, customer_id) for r in rows])

    async def get_offer_catalog(self) -> OfferCatalog:
        """Return the offer definitions as published."""
        state = await self._current()
        return OfferCatalog(state.version, list(state.offer_catalog or []))

    async def get_offer_audience(self, offer_id: str) -> OfferDecisions:
        """Return every published decision of the offer."""
        state = await self._current()
        try:
            blob = await self.client.get(self.keys.snapshot_table(state.version, Fields.audience_table(offer_id)))
        except (RedisError, OSError) as exc:
            raise _errors(exc) from exc
        if blob is None:
            return OfferDecisions(state.version, [])
        rows = await asyncio.to_thread(lambda: pl.read_ipc(io.BytesIO(blob)).to_dicts())
        return OfferDecisions(state.version, [OfferDecision.from_row(r) for r in rows])

    async def model_files(self) -> Mapping[str, bytes]:
        """Return the recommender files published with the active version (loaded once per version)."""
        state = await self._current()
        if state.models is None:
            names = list(state.info.get("model_files", []))
            try:
                blobs = (
                    await self.client.mget(
                        [self.keys.snapshot_table(state.version, Fields.model_table(n)) for n in names]
                    )
                    if names
                    else []
                )
            except (RedisError, OSError) as exc:
                raise _errors(exc) from exc
            state.models = {n: b for n, b in zip(names, blobs) if b is not None}
        return state.models

    async def dashboard(self) -> dict[str, Any]:
        """Return ``{"version", "created_at", "dashboard", "experiments"}`` of the active version.

        The two tables are read once per version and kept with it.
        """
        import datetime as dt

        state = await self._current()
        if state.dashboard is None:
            try:
                raw = await self.client.mget(
                    [
                        self.keys.snapshot_table(state.version, name)
                        for name in (Fields.DASHBOARD_TABLE, Fields.EXPERIMENTS_TABLE)
                    ]
                )
            except (RedisError, OSError) as exc:
                raise _errors(exc) from exc
            state.dashboard = {
                "dashboard": orjson.loads(raw[0]) if raw[0] else None,
                "experiments": orjson.loads(raw[1]) if raw[1] else None,
            }
        created = dt.datetime.fromtimestamp(state.created_at_s, dt.UTC)
        return {"version": state.version, "created_at": created, **state.dashboard}


def _build_state(
    version: str,
    info_raw: bytes,
    items_raw: bytes,
    labels_raw: bytes | None,
    fallbacks_raw: bytes | None,
    catalog_raw: bytes | None,
) -> VersionState:
    import datetime as dt

    info = orjson.loads(info_raw)
    table = ItemTable.from_frame(pl.read_ipc(io.BytesIO(items_raw)))
    labels = [tuple(x) for x in orjson.loads(labels_raw or b"[]")]
    fallbacks = {}
    for name, (ids, scores) in orjson.loads(fallbacks_raw or b"{}").items():
        reason = fallback_reason(name)
        fallbacks[name] = RankedList(
            version, [RankedItem(i, float(codec.to_f16(s)), "fallback", reason) for i, s in zip(ids, scores)]
        )
    return VersionState(
        version=version,
        info=info,
        created_at_s=dt.datetime.fromisoformat(info["created_at"]).timestamp(),
        list_dtype=codec.dtype_from_json(info["list_dtype"]),
        row_format=codec.struct_format(codec.dtype_from_json(info["list_dtype"])),
        table=table,
        labels=labels,
        fallbacks=fallbacks,
        profile_codec=codec.ProfileCodec.from_json(info["profile_codec"]) if info.get("profile_codec") else None,
        buckets={k: int(v) for k, v in info.get("buckets", {}).items()},
        offer_catalog=orjson.loads(catalog_raw) if catalog_raw else None,
    )
