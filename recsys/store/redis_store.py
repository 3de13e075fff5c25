"""``RedisSnapshotStore``: writes a snapshot as a new version, verifies it, and activates it atomically.

Protocol of one publish (all control keys share the ``{snap}`` slot, see ``Keys``):

1. take the publish lock (``SET NX`` with a short TTL, kept alive by a heartbeat, see ``_LockHeartbeat``)
   and delete versions left in the pending set by publishes that died;
2. add the version to the pending set and write its metadata (status ``writing``);
3. write tables (items, labels, fallbacks, offers) and per-customer/per-item bucket hashes with
   pipelined multi-field ``HSET``s; every key written carries the TTL ``PENDING_TTL_S`` until step 5;
4. verify: every bucket's field count and the sha1 of its fields and values, computed by Redis, must
   equal what was sent; tables are read back and compared;
5. the version's keys are made persistent, then one Lua script checks the lock is still ours, switches the
   pointer, records the version and clears it from pending — the only step that makes anything visible to
   serving (if it refuses, the keys get their TTL back);
6. retention: the active version's keys persist; other kept versions expire after ``ttl_s``;
   versions beyond ``keep`` are deleted.

A publish killed at any point before step 5 leaves the pointer on the old version, its lock expires within
``LOCK_TTL_S`` and its keys within ``PENDING_TTL_S`` (or at the next publish, which deletes pending versions).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson
import redis
from redis.exceptions import RedisError, ResponseError

from recsys.clock import utcnow
from recsys.exceptions import Conflict, NotFound, StoreUnavailable
from recsys.store import scripts
from recsys.store.base import PublishReport, SnapshotData, VersionInfo
from recsys.store.keys import Fields, Keys
from recsys.store.memory import new_version_id
from recsys.store.prepare import prepare

# The publish lock's TTL, kept alive by the heartbeat every LOCK_TTL_S / 3: a killed publish blocks the next one
# for at most this long. Read at call time, so tests may shorten it.
LOCK_TTL_S = 5
# Everything a publish writes expires after this long until the version is activated (then it persists), so a
# publish that dies leaves nothing behind for long; a publish must finish writing and verifying within it.
PENDING_TTL_S = 6 * 3600


class RedisSnapshotStore:
    """Publisher side of the snapshot store on a synchronous Redis client (see module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    # --- reading control state -------------------------------------------------------
    def active_version(self) -> str | None:
        """Return the active version id, or ``None``."""
        value = self._call(self.client.get, self.keys.snapshot_pointer())
        return value.decode() if value is not None else None

    def info(self, version: str) -> dict[str, Any] | None:
        """Return a version's metadata, or ``None`` if it is unknown or expired."""
        raw = self._call(self.client.hget, self.keys.snapshot_meta(version), Fields.META_INFO)
        return orjson.loads(raw) if raw is not None else None

    def versions(self) -> list[VersionInfo]:
        """Return kept versions, newest first (expired ones are dropped from the list)."""
        active = self.active_version()
        out = []
        for raw, _score in self._call(self.client.zrevrange, self.keys.snapshot_versions(), 0, -1, withscores=True):
            version = raw.decode()
            info = self.info(version)
            if info is None:
                self._call(self.client.zrem, self.keys.snapshot_versions(), version)
                continue
            out.append(
                VersionInfo(version, dt.datetime.fromisoformat(info["created_at"]), version == active, info["counts"])
            )
        return out

    # --- switching -------------------------------------------------------------------
    def activate(self, version: str, *, keep: int = 3, ttl_s: int = 7 * 86_400) -> None:
        """Make a kept version active; raises ``NotFound`` if it is not kept (or expired)."""
        if self.info(version) is None:
            raise NotFound(f"version {version!r} is not kept (or has expired); see `centric publish --list`")
        self._persist(version)
        try:
            scripts.run(
                self.client, scripts.ACTIVATE_VERSION, self._control_keys(version), [version, utcnow().timestamp(), "0"]
            )
        except ResponseError as exc:
            raise NotFound(f"version {version!r} cannot be activated: {exc}") from exc
        except RedisError as exc:
            raise StoreUnavailable(f"cannot activate version {version}: {exc}") from exc
        self._retain(keep, ttl_s)

    def rollback(self, *, keep: int = 3, ttl_s: int = 7 * 86_400) -> str:
        """Activate the version published before the active one; return it. Raises ``NotFound`` if none is kept."""
        kept = self.versions()
        active = next((i for i, v in enumerate(kept) if v.active), None)
        if active is None:
            raise NotFound("nothing to roll back: no active version")
        if active + 1 >= len(kept):
            raise NotFound(f"no version older than {kept[active].version} is kept to roll back to")
        target = kept[active + 1].version
        self.activate(target, keep=keep, ttl_s=ttl_s)
        return target

    # --- publishing ------------------------------------------------------------------
    def publish(
        self, data: SnapshotData, *, keep: int = 3, ttl_s: int = 7 * 86_400, progress: Any = None
    ) -> PublishReport:
        """Write, verify and activate ``data`` as a new version (see module docstring); return the report.

        Raises ``Conflict`` when another publish is running, ``ArtifactError`` when verification fails,
        ``StoreUnavailable`` when Redis fails. In every failure the previously active version stays active.
        """
        from recsys.store.writer import VersionWriter

        start = time.perf_counter()
        report_progress = progress or (lambda _d, _n, _t: None)
        prepared = prepare(data)
        version = new_version_id()
        if not self._call(self.client.set, self.keys.snapshot_lock(), version, nx=True, ex=LOCK_TTL_S):
            holder = self._call(self.client.get, self.keys.snapshot_lock())
            raise Conflict(
                f"another publish (version {holder.decode() if holder else '?'}) is in progress; "
                f"wait for it, or if it died, retry after {LOCK_TTL_S}s when its lock expires"
            )
        heartbeat = _LockHeartbeat(self, version)
        heartbeat.start()
        try:
            self._cleanup_pending(version)
            writer = VersionWriter(self, version, prepared, report_progress)
            notes = writer.write()
            checksums = writer.verify()
            # Persist first: a publish killed after activation must not leave the active version expiring.
            self._persist(version)
            # The only step that makes the version visible; the script re-checks that the lock is ours,
            # so a lock the heartbeat lost (expired or taken over) always refuses activation.
            try:
                scripts.run(
                    self.client,
                    scripts.ACTIVATE_VERSION,
                    self._control_keys(version),
                    [version, utcnow().timestamp(), "1"],
                )
            except ResponseError as exc:
                with contextlib.suppress(RedisError):
                    self._each_key(self.version_keys(version), "EXPIRE", PENDING_TTL_S)
                why = f" ({heartbeat.lost})" if heartbeat.lost else ""
                raise Conflict(f"publish of {version} not activated: {exc}{why}") from exc
            removed = self._retain(keep, ttl_s)
        except RedisError as exc:
            raise StoreUnavailable(f"publish of {version} failed, previous version stays active: {exc}") from exc
        finally:
            heartbeat.stop()
            with contextlib.suppress(RedisError):  # the lock expires by itself
                scripts.run(self.client, scripts.RELEASE_LOCK, [self.keys.snapshot_lock()], [version])
        return PublishReport(version, writer.counts, checksums, time.perf_counter() - start, removed, notes)

    def refresh_lock(self, version: str) -> None:
        """Extend the publish lock while writing; raises ``Conflict`` if it is no longer ours.

        Atomic compare-and-extend (``lua/refresh_lock.lua``): a lock held by another publish is left untouched, and
        a lock that expired is not re-taken (another publish may have run and cleaned up our version).
        """
        if not scripts.run(
            self.client, scripts.REFRESH_LOCK, [self.keys.snapshot_lock()], [version, int(LOCK_TTL_S * 1000)]
        ):
            holder = self.client.get(self.keys.snapshot_lock())
            who = f"taken by {holder.decode()}" if holder is not None else "expired"
            raise Conflict(f"publish lock {who} while writing {version}")

    # --- internals ---------------------------------------------------------------------
    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RedisError as exc:
            raise StoreUnavailable(f"Redis error: {exc}") from exc

    def _control_keys(self, version: str) -> list[str]:
        k = self.keys
        return [
            k.snapshot_pointer(),
            k.snapshot_versions(),
            k.snapshot_pending(),
            k.snapshot_meta(version),
            k.snapshot_lock(),
        ]

    def version_keys(self, version: str, info: dict[str, Any] | None = None) -> list[str]:
        """Return every data key of a version (from its metadata), meta key last."""
        info = info if info is not None else self.info(version)
        out: list[str] = []
        if info:
            out += [self.keys.snapshot_table(version, name) for name in info.get("tables", [])]
            for kind, n in info.get("buckets", {}).items():
                out += [self.keys.snapshot_bucket(version, kind, b) for b in range(int(n))]
        out.append(self.keys.snapshot_meta(version))
        return out

    def _each_key(self, keys_: Iterable[str], command: str, *args: Any) -> None:
        pipe = self.client.pipeline(transaction=False)
        for n, key in enumerate(keys_, 1):
            pipe.execute_command(command, key, *args)
            if n % 2000 == 0:
                pipe.execute()
        pipe.execute()

    def _persist(self, version: str) -> None:
        self._each_key(self.version_keys(version), "PERSIST")

    def delete_version(self, version: str) -> None:
        """Delete every key of a version and forget it."""
        self._each_key(self.version_keys(version), "UNLINK")
        self.client.zrem(self.keys.snapshot_versions(), version)
        self.client.srem(self.keys.snapshot_pending(), version)

    def _cleanup_pending(self, current: str) -> None:
        for raw in self.client.smembers(self.keys.snapshot_pending()):
            if raw.decode() != current:
                self.delete_version(raw.decode())

    def _retain(self, keep: int, ttl_s: int) -> list[str]:
        active = self.active_version()
        newest_first = [v.decode() for v in self.client.zrevrange(self.keys.snapshot_versions(), 0, -1)]
        # at least two: the version just replaced stays (until its TTL) for workers still caching the old pointer
        kept = newest_first[: max(keep, 2)]
        if active and active not in kept:
            kept = kept[: max(keep - 1, 0)] + [active]
        removed = [v for v in newest_first if v not in kept]
        for version in removed:
            self.delete_version(version)
        for version in kept:
            if version == active:
                self._persist(version)
            else:
                self._each_key(self.version_keys(version), "EXPIRE", ttl_s)
        return removed


class _LockHeartbeat:
    """Keeps the publish lock alive from a daemon thread for the whole of one publish.

    Refreshing only at loop points of the writer would leave the verify step, table writes, pending
    cleanup and retention (each of which can outlast ``LOCK_TTL_S`` on a large snapshot or a slow Redis)
    uncovered; a heartbeat covers every step without threading calls through them. It refreshes every
    ``LOCK_TTL_S / 3`` with the compare-and-extend script and stops for good the first time the lock is
    not ours, recording why in ``lost``. It never re-takes the lock, so losing it is final: the
    activation script checks the lock itself and refuses, and ``refresh_lock`` in the writer fails fast.
    A Redis error is not a loss; the next beat retries (the lock's own TTL is the safety net).
    """

    def __init__(self, store: RedisSnapshotStore, version: str) -> None:
        self.store = store
        self.version = version
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"publish-lock-{version}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # Bounded join: a beat stuck on a dead connection must not hang the publish. A late beat is
        # harmless, the compare-and-extend script does nothing once the lock is released or not ours.
        self._stop.set()
        self._thread.join(timeout=5)

    def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` in short steps; return True as soon as ``stop`` was called.

        Not ``Event.wait(timeout)``: its timed semaphore wait never returns under libfaketime, which the suite's
        any-date check uses (docs/testing.md); plain sleeps work under every clock.
        """
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.05))
        return True

    def _run(self) -> None:
        while not self._pause(max(LOCK_TTL_S / 3, 0.05)):
            try:
                self.store.refresh_lock(self.version)
            except Conflict as exc:
                self.lost = str(exc)
                return
            except RedisError:
                continue
