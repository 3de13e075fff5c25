"""Snapshot versions from the web UI: roll back to the version published before the active one (admin)."""

from __future__ import annotations

from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore


def rollback(redis_url: str, keys: Keys, *, keep: int, ttl_s: int) -> str:
    """Activate the version published before the active one, as `centric publish --rollback` does; return it.

    Synchronous (the publisher's client): call it in a thread. Raises ``NotFound`` when no older version is kept,
    ``StoreUnavailable`` when Redis fails.
    """
    client = sync_client(redis_url)
    try:
        return RedisSnapshotStore(client, keys).rollback(keep=keep, ttl_s=ttl_s)
    finally:
        client.close()
