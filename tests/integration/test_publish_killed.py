"""Issue 16: a `kill -9`'d publish blocks the next one for a few seconds only, and leaves nothing without a TTL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from recsys.exceptions import Conflict
from recsys.store import redis_store
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from tests.helpers.http import write_artifacts
from training.jobs.publish import run_publish

ROOT = Path(__file__).resolve().parents[2]

# A publish that stops for good after writing everything, before verifying: the moment to kill it.
STALLED_PUBLISH = """
import sys, time
from pathlib import Path
import redis
from recsys.store.keys import Keys
from recsys.store.writer import VersionWriter
from training.jobs.publish import run_publish

def stall(self):
    print("WRITTEN", self.version, flush=True)
    time.sleep(600)

VersionWriter.verify = stall
run_publish(redis.Redis.from_url(sys.argv[1]), Keys(sys.argv[2]), Path(sys.argv[3]))
"""


def test_a_killed_publish_blocks_the_next_for_seconds_and_its_keys_expire(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    first = run_publish(redis_client, keys, write_artifacts(tmp_path / "a"))["version"]
    process = subprocess.Popen(
        [sys.executable, "-c", STALLED_PUBLISH, redis_url, keys.env, str(write_artifacts(tmp_path / "b"))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("WRITTEN"), line
        dead = line.split()[1]
        written = [k for k in redis_client.scan_iter(match=f"{keys.ns}:snap:*{dead}*", count=1000)]
        assert written, "the stalled publish wrote nothing"
        no_ttl = [k for k in written if redis_client.ttl(k) < 0]
        assert no_ttl == [], f"keys written by a publish not yet active have no TTL: {no_ttl[:3]}"
        assert all(redis_client.ttl(k) <= redis_store.PENDING_TTL_S for k in written)
    finally:
        process.kill()  # kill -9: no finally, no lock release
        process.wait(timeout=10)
    killed_at = time.monotonic()
    while True:
        try:
            second = run_publish(redis_client, keys, write_artifacts(tmp_path / "c"))["version"]
            break
        except Conflict:
            assert time.monotonic() - killed_at < redis_store.LOCK_TTL_S + 3, "the dead publish's lock still blocks"
            time.sleep(0.25)
    blocked_s = time.monotonic() - killed_at
    assert blocked_s <= redis_store.LOCK_TTL_S + 1
    store = RedisSnapshotStore(redis_client, keys)
    assert store.active_version() == second != first
    # the next publish cleaned up the dead one, and the active version persists
    assert list(redis_client.scan_iter(match=f"{keys.ns}:snap:*{dead}*", count=1000)) == []
    assert redis_client.smembers(keys.snapshot_pending()) == set()
    ttls = {redis_client.ttl(k) for k in store.version_keys(second) if redis_client.exists(k)}
    assert ttls == {-1}, ttls
