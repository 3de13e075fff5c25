"""``VersionWriter``: encodes one prepared snapshot and writes it under its version (used by ``RedisSnapshotStore``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import polars as pl
from redis.exceptions import RedisError

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.exceptions import ArtifactError
from recsys.store import codec, scripts
from recsys.store.keys import Fields
from recsys.store.prepare import Prepared

if TYPE_CHECKING:
    from recsys.store.redis_store import RedisSnapshotStore

BATCH_BYTES = 4 << 20  # bytes sent per pipeline round trip
LISTPACK_VALUE_BYTES = 1024  # bucket hashes with values up to this size stay compact listpacks
DECISION_FIELDS = ("channel", "offer_id", "rank", "expected_value", "p_accept", "reason", "arm")


class VersionWriter:
    """Writes tables and bucket hashes of one version, then verifies them. ``counts`` says what was written."""

    def __init__(
        self, store: RedisSnapshotStore, version: str, prepared: Prepared, progress: Callable[[str, int, int], None]
    ) -> None:
        self.store = store
        self.client = store.client
        self.keys = store.keys
        self.version = version
        self.prepared = prepared
        self.progress = progress
        self.counts: dict[str, int] = {}
        self.expected: dict[str, dict[int, tuple[int, str]]] = {}  # kind -> bucket -> (count, sha1 of fields+values)
        self.tables: dict[str, bytes] = {}
        self._written: dict[str, tuple[list[bytes], list[bytes], np.ndarray]] = {}
        self.info: dict[str, Any] = {}
        self.notes: list[str] = []

    # --- planning ----------------------------------------------------------------------
    def _plan(self) -> dict[str, Any]:
        p = self.prepared
        list_dtype = codec.list_dtype(p.items.height, len(p.labels))
        buckets: dict[str, int] = {}
        if p.recs is not None:
            buckets["recs"] = codec.n_buckets_for(p.recs.get_column(Columns.customer_id).n_unique())
        if p.similar is not None:
            buckets["sim"] = codec.n_buckets_for(p.similar.get_column(Columns.item_id).n_unique())
        if p.profiles is not None:
            buckets["prof"] = codec.n_buckets_for(p.profiles.height)
        if p.decisions is not None:
            buckets["offers"] = codec.n_buckets_for(p.decisions.get_column(Columns.customer_id).n_unique())
        profile_codec = (
            codec.ProfileCodec.for_frame(p.profiles, Columns.customer_id) if p.profiles is not None else None
        )
        self.tables = self._tables()
        return {
            "version": self.version,
            "created_at": utcnow().isoformat(),
            "list_dtype": codec.dtype_to_json(list_dtype),
            "profile_codec": profile_codec.to_json() if profile_codec else None,
            "buckets": buckets,
            "tables": sorted(self.tables),
            "fallbacks": sorted(p.fallbacks),
            "model_files": sorted(p.model_files),
            "counts": {},
        }

    def _tables(self) -> dict[str, bytes]:
        p = self.prepared
        tables = {"items": _ipc(p.items), "labels": orjson.dumps(p.labels)}
        tables["fallbacks"] = orjson.dumps(
            {
                name: [frame.get_column(Columns.item_id).to_list(), frame.get_column(Columns.score).to_list()]
                for name, frame in p.fallbacks.items()
            }
        )
        if p.offers is not None:
            tables["offer_catalog"] = orjson.dumps(p.offers, default=str)
        if p.experiments is not None:
            tables[Fields.EXPERIMENTS_TABLE] = orjson.dumps(p.experiments, default=str)
        if p.dashboard is not None:
            tables[Fields.DASHBOARD_TABLE] = orjson.dumps(p.dashboard, default=str)
        if p.decisions is not None:
            for (offer_id,), part in p.decisions.group_by("offer_id"):
                tables[Fields.audience_table(offer_id)] = _ipc(part)
        for name, blob in p.model_files.items():
            tables[Fields.model_table(name)] = blob
        return tables

    # --- writing -----------------------------------------------------------------------
    def write(self) -> list[str]:
        """Write metadata, tables and buckets; return notes for the report. Raises ``RedisError`` on failure."""
        self.info = self._plan()
        ttl = pending_ttl_s()
        self.client.sadd(self.keys.snapshot_pending(), self.version)
        meta = self.keys.snapshot_meta(self.version)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(meta, mapping={Fields.META_INFO: orjson.dumps(self.info), Fields.META_STATUS: "writing"})
        pipe.expire(meta, ttl)  # until activated: a publish that dies leaves nothing behind for long
        pipe.execute()
        self._ensure_listpack()
        pipe = self.client.pipeline(transaction=False)
        for name, blob in self.tables.items():
            pipe.set(self.keys.snapshot_table(self.version, name), blob, ex=ttl)
        pipe.execute()
        p = self.prepared
        dtype = codec.dtype_from_json(self.info["list_dtype"])
        if p.recs is not None:
            owners, blobs = self._encode_lists(p.recs, Columns.customer_id, dtype)
            self.counts["customers"] = len(owners)
            self.counts["recommendations"] = p.recs.height
            self._write_buckets("recs", owners, blobs)
        if p.similar is not None:
            owners, blobs = self._encode_lists(p.similar, Columns.item_id, dtype)
            self.counts["similar"] = len(owners)
            self._write_buckets("sim", owners, blobs)
        if p.profiles is not None:
            profile_codec = codec.ProfileCodec.from_json(self.info["profile_codec"])
            records = profile_codec.encode(p.profiles)
            blobs = codec.split_blob(records.tobytes(), np.ones(len(records), dtype=np.int64), records.dtype.itemsize)
            owners = p.profiles.get_column(Columns.customer_id).to_list()
            self.counts["profiles"] = len(owners)
            self._write_buckets("prof", owners, blobs)
        if p.decisions is not None:
            owners, blobs = self._encode_decisions(p.decisions)
            self.counts["offer_customers"] = len(owners)
            self._write_buckets("offers", owners, blobs)
        self.counts["items"] = p.items.height
        self.counts["fallbacks"] = len(p.fallbacks)
        self.info["counts"] = self.counts
        self.client.hset(self.keys.snapshot_meta(self.version), Fields.META_INFO, orjson.dumps(self.info))
        return self.notes

    def _ensure_listpack(self) -> None:
        # Buckets of ~256 records are compact only while the hash stays a listpack; the default
        # value limit (64 B) is below one customer's 20 recommendations, so raise it when allowed.
        for name in ("hash-max-listpack-value", "hash-max-ziplist-value"):
            try:
                current = self.client.config_get(name)
            except RedisError:
                self.notes.append(
                    "CONFIG is not allowed on this Redis: buckets use the default hash encoding (more memory)"
                )
                return
            if name in current:
                if int(current[name]) < LISTPACK_VALUE_BYTES:
                    try:
                        self.client.config_set(name, LISTPACK_VALUE_BYTES)
                        self.notes.append(
                            f"raised {name} from {current[name]} to {LISTPACK_VALUE_BYTES} (compact snapshot buckets)"
                        )
                    except RedisError as exc:
                        self.notes.append(f"could not raise {name} ({exc}): buckets use more memory")
                return

    def _encode_lists(self, frame: pl.DataFrame, owner: str, dtype: np.dtype) -> tuple[list[str], list[bytes]]:
        # Rows are grouped by owner (prepare guarantees it), so run lengths give each owner's list.
        runs = frame.select(pl.col(owner).rle()).unnest(owner)
        blob = codec.encode_lists(
            frame.get_column("pos").to_numpy(),
            frame.get_column(Columns.score).to_numpy(),
            frame.get_column("label").to_numpy(),
            dtype,
        )
        return runs.get_column("value").to_list(), codec.split_blob(
            blob, runs.get_column("len").to_numpy(), dtype.itemsize
        )

    def _encode_decisions(self, decisions: pl.DataFrame) -> tuple[list[str], list[bytes]]:
        fields = [c for c in DECISION_FIELDS if c in decisions.columns]
        grouped = decisions.group_by(Columns.customer_id, maintain_order=True).agg(
            (pl.lit("[") + pl.struct(fields).struct.json_encode().str.join(",") + pl.lit("]")).alias("json")
        )
        return grouped.get_column(Columns.customer_id).to_list(), [
            s.encode() for s in grouped.get_column("json").to_list()
        ]

    def _write_buckets(self, kind: str, owners: list[str], blobs: list[bytes]) -> None:
        n_buckets = int(self.info["buckets"][kind])
        buckets = codec.buckets_of(pl.Series(owners, dtype=pl.String), n_buckets)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(n_buckets + 1))
        fields = [owners[i].encode() for i in order.tolist()]
        values = [blobs[i] for i in order.tolist()]
        expected: dict[int, tuple[int, str]] = {}
        ttl = pending_ttl_s()
        pipe = self.client.pipeline(transaction=False)
        pending_bytes = 0
        total = len(fields)
        done = 0
        for b in range(n_buckets):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            if lo == hi:
                continue
            args: list[bytes] = [b""] * (2 * (hi - lo))
            args[0::2] = fields[lo:hi]
            args[1::2] = values[lo:hi]
            expected[b] = (hi - lo, hashlib.sha1(b"".join(args)).hexdigest())
            bucket_key = self.keys.snapshot_bucket(self.version, kind, b)
            pipe.execute_command("HSET", bucket_key, *args)
            pipe.expire(bucket_key, ttl)
            pending_bytes += sum(map(len, values[lo:hi]))
            done += hi - lo
            if pending_bytes >= BATCH_BYTES:
                pipe.execute()
                self.store.refresh_lock(self.version)
                self.progress(f"write {kind}", done, total)
                pending_bytes = 0
        pipe.execute()
        self.progress(f"write {kind}", total, total)
        self.expected[kind] = expected
        self._written[kind] = (fields, values, bounds)  # kept for the rare unordered (hashtable) verification

    # --- verifying -----------------------------------------------------------------------
    def verify(self) -> dict[str, str]:
        """Check every bucket's record count and sha1 and every table's bytes; return a checksum per kind.

        Redis hashes each bucket as HGETALL returns it; a compact (listpack) bucket returns fields in
        insertion order, which is the order we sent. A bucket Redis converted to a hashtable (values
        above its listpack limit) has no stable order, so it is read back and compared field by field.
        Raises ``ArtifactError`` naming the first mismatch.
        """
        checksums: dict[str, str] = {}
        for kind, expected in self.expected.items():
            buckets = sorted(expected)
            answers: list[Any] = []
            for start in range(0, len(buckets), 1024):
                chunk = buckets[start : start + 1024]
                answers += scripts.run_batch(
                    self.client,
                    [scripts.VERIFY_BUCKET.command([self.keys.snapshot_bucket(self.version, kind, b)]) for b in chunk],
                )
                if start + len(chunk) < len(buckets):
                    self.progress(f"verify {kind}", start + len(chunk), len(buckets))
            self.progress(f"verify {kind}", len(buckets), len(buckets))
            for b, (count, digest, encoding) in zip(buckets, answers):
                if int(count) != expected[b][0]:
                    self._mismatch(kind, b, f"Redis holds {count} records, {expected[b][0]} were written")
                if encoding.decode() == "hashtable":
                    self._compare_unordered(kind, b)
                elif digest.decode() != expected[b][1]:
                    self._mismatch(kind, b, "record bytes differ from what was written (checksum mismatch)")
            checksums[kind] = hashlib.sha1("".join(expected[b][1] for b in buckets).encode()).hexdigest()[:16]
        pipe = self.client.pipeline(transaction=False)
        names = sorted(self.tables)
        for name in names:
            pipe.get(self.keys.snapshot_table(self.version, name))
        for name, stored in zip(names, pipe.execute()):
            if stored != self.tables[name]:
                raise ArtifactError(
                    f"verification failed for table {name} of {self.version}; the version was not activated"
                )
        return checksums

    def _compare_unordered(self, kind: str, bucket: int) -> None:
        stored = self.client.hgetall(self.keys.snapshot_bucket(self.version, kind, bucket))
        fields, values, bounds = self._written[kind]
        lo, hi = int(bounds[bucket]), int(bounds[bucket + 1])
        if stored != dict(zip(fields[lo:hi], values[lo:hi])):
            self._mismatch(kind, bucket, "record bytes differ from what was written")

    def _mismatch(self, kind: str, bucket: int, what: str) -> None:
        raise ArtifactError(
            f"verification failed for {kind} bucket {bucket} of {self.version}: {what}; the version was not activated"
        )


def pending_ttl_s() -> int:
    """The TTL of a version's keys until it is activated (``redis_store.PENDING_TTL_S``, read at call time)."""
    from recsys.store import redis_store

    return int(redis_store.PENDING_TTL_S)


def _ipc(frame: pl.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="zstd")
    return buffer.getvalue()
