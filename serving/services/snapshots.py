"""Snapshot versions from the web UI: roll back to the version published before the active one (admin)."""

from __future__ import annotations

import contextlib
import secrets

from redis.exceptions import RedisError

from recsys.exceptions import Conflict, StoreUnavailable
from recsys.store import scripts
from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore

LOCK_TTL_S = 30  # a rollback takes a few round trips; the lock outlives a crashed one by this long at most


def rollback(redis_url: str, keys: Keys, *, expected: str, keep: int, ttl_s: int) -> str:
    """Activate the version published before ``expected``, as `centric publish --rollback` does; return it.

    Only while ``expected`` is still the active version: a form submitted twice (a double click, a reload, two
    admins) rolls back once, not one version further per submission. The publish lock is held meanwhile, so two
    rollbacks, or a rollback and a publish, never interleave.

    Synchronous (the publisher's client): call it in a thread. Raises ``Conflict`` when ``expected`` is no longer
    active or a publish holds the lock, ``NotFound`` when no older version is kept, ``StoreUnavailable`` when Redis
    fails.
    """
    client = sync_client(redis_url)
    token = f"rollback-{secrets.token_hex(8)}"
    try:
        try:
            locked = client.set(keys.snapshot_lock(), token, nx=True, ex=LOCK_TTL_S)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot roll back: Redis is unreachable ({exc})") from exc
        if not locked:
            raise Conflict(
                "a publish or another rollback is running (it holds the publish lock, for at most a minute if it "
                "died): nothing was rolled back; reload the page and try again shortly"
            )
        try:
            store = RedisSnapshotStore(client, keys)
            active = store.active_version()
            if active != expected:
                raise Conflict(
                    f"snapshot {expected} is no longer the active one (the active one is {active}): nothing was "
                    "rolled back again; reload the page to see the versions"
                )
            return store.rollback(keep=keep, ttl_s=ttl_s)
        finally:
            with contextlib.suppress(RedisError, OSError):  # else the lock expires by itself within LOCK_TTL_S
                scripts.run(client, scripts.RELEASE_LOCK, [keys.snapshot_lock()], [token])
    finally:
        client.close()
