"""The publish lock against real Redis: refresh is an atomic compare-and-extend, and a heartbeat keeps it alive."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from recsys.exceptions import Conflict
from recsys.store import redis_store
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from recsys.store.writer import VersionWriter
from tests.helpers.http import write_artifacts
from training.jobs.publish import run_publish

SHORT_TTL_S = 1


def test_refresh_leaves_another_holders_lock_untouched(keys: Keys, redis_client: redis.Redis) -> None:
    store = RedisSnapshotStore(redis_client, keys)
    # Ours expired and another publish took the lock: refreshing must report the loss and change nothing.
    redis_client.set(keys.snapshot_lock(), "someone-else", ex=30)
    with pytest.raises(Conflict, match="taken by someone-else"):
        store.refresh_lock("mine")
    assert redis_client.get(keys.snapshot_lock()) == b"someone-else"
    assert 0 < redis_client.pttl(keys.snapshot_lock()) <= 30_000  # not extended to LOCK_TTL_S


def test_refresh_does_not_retake_an_expired_lock(keys: Keys, redis_client: redis.Redis) -> None:
    store = RedisSnapshotStore(redis_client, keys)
    with pytest.raises(Conflict, match="expired"):
        store.refresh_lock("mine")
    assert not redis_client.exists(keys.snapshot_lock())


def test_refresh_extends_our_own_lock(keys: Keys, redis_client: redis.Redis) -> None:
    store = RedisSnapshotStore(redis_client, keys)
    redis_client.set(keys.snapshot_lock(), "mine", px=1_000)
    store.refresh_lock("mine")
    assert redis_client.get(keys.snapshot_lock()) == b"mine"
    assert redis_client.pttl(keys.snapshot_lock()) > 1_000  # now LOCK_TTL_S (5 s)


def _slow_verify(monkeypatch: pytest.MonkeyPatch, seconds: float, during: object = None) -> None:
    """Make ``VersionWriter.verify`` take ``seconds`` longer; ``during`` runs midway (as another publisher)."""
    original = VersionWriter.verify

    def slow(self: VersionWriter) -> dict[str, str]:
        time.sleep(seconds / 2)
        if callable(during):
            during()
        time.sleep(seconds / 2)
        return original(self)

    monkeypatch.setattr(VersionWriter, "verify", slow)


def test_a_verify_slower_than_the_lock_ttl_still_activates(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "LOCK_TTL_S", SHORT_TTL_S)
    _slow_verify(monkeypatch, 3 * SHORT_TTL_S)
    version = run_publish(redis_client, keys, write_artifacts(tmp_path / "a"))["version"]
    assert RedisSnapshotStore(redis_client, keys).active_version() == version
    assert not redis_client.exists(keys.snapshot_lock())  # released
    assert redis_client.smembers(keys.snapshot_pending()) == set()


def test_without_the_heartbeat_a_slow_verify_loses_the_lock(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the test above: the slow verify really outlasts the lock when nothing refreshes it."""
    monkeypatch.setattr(redis_store, "LOCK_TTL_S", SHORT_TTL_S)
    monkeypatch.setattr(redis_store._LockHeartbeat, "_run", lambda self: None)  # beats nothing
    _slow_verify(monkeypatch, 3 * SHORT_TTL_S)
    with pytest.raises(Conflict, match="lock lost"):
        run_publish(redis_client, keys, write_artifacts(tmp_path / "a"))
    assert RedisSnapshotStore(redis_client, keys).active_version() is None


def test_a_publish_whose_lock_is_taken_over_is_not_activated_and_leaves_the_new_lock(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = run_publish(redis_client, keys, write_artifacts(tmp_path / "v1"))["version"]
    monkeypatch.setattr(redis_store, "LOCK_TTL_S", SHORT_TTL_S)

    def take_over() -> None:  # our lock vanished (e.g. expired during a pause) and another publish took it
        redis_client.delete(keys.snapshot_lock())
        redis_client.set(keys.snapshot_lock(), "someone-else", ex=30)

    _slow_verify(monkeypatch, 3 * SHORT_TTL_S, during=take_over)
    with pytest.raises(Conflict, match="lock lost"):
        run_publish(redis_client, keys, write_artifacts(tmp_path / "v2", top_item="bread"))
    assert RedisSnapshotStore(redis_client, keys).active_version() == old
    assert redis_client.get(keys.snapshot_lock()) == b"someone-else"  # neither refreshed over nor released
    assert 0 < redis_client.pttl(keys.snapshot_lock()) <= 30_000
