"""Publishing against real Redis: a killed publish never becomes active; rollback; retention; the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis
from typer.testing import CliRunner

from recsys.store import codec
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from tests.helpers.http import app_client, bearer, write_artifacts
from training.cli import app
from training.jobs.publish import run_publish


def c1_bucket(keys: Keys, version: str, customer_id: str = "c1") -> str:
    """The key of the recommendations bucket holding ``customer_id`` in ``version`` (any version: same bucket count)."""
    return keys.snapshot_bucket(version, "recs", codec.bucket_of(customer_id, codec.n_buckets_for(2)))


KILLED_PUBLISH = textwrap.dedent("""
    import sys, time, redis
    from pathlib import Path
    from recsys.store.keys import Keys
    from training.jobs.publish import run_publish

    def stall(step, done, total):
        print(f"progress {step}", flush=True)
        time.sleep(60)  # the test kills us here, midway through writing

    run_publish(redis.Redis.from_url(sys.argv[1]), Keys(sys.argv[2]), Path(sys.argv[3]), progress=stall)
""")


def test_a_killed_publish_never_becomes_active_and_is_cleaned_up_later(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    old = run_publish(redis_client, keys, write_artifacts(tmp_path / "v1"))["version"]
    artifacts = write_artifacts(tmp_path / "v2", top_item="bread")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISH, redis_url, keys.env, str(artifacts)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("progress write"), line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = RedisSnapshotStore(redis_client, keys)
    assert store.active_version() == old
    assert [v.version for v in store.versions()] == [old]
    pending = [v.decode() for v in redis_client.smembers(keys.snapshot_pending())]
    assert len(pending) == 1 and pending[0] != old
    assert redis_client.exists(c1_bucket(keys, pending[0]))  # it had written data
    # The dead publisher's lock expires; until then a new publish is refused with a clear message.
    redis_client.delete(keys.snapshot_lock())
    new = run_publish(redis_client, keys, artifacts)["version"]
    assert store.active_version() == new
    assert not redis_client.exists(c1_bucket(keys, pending[0]))
    assert redis_client.smembers(keys.snapshot_pending()) == set()


def test_concurrent_publish_is_refused_while_the_lock_is_held(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis
) -> None:
    from recsys.exceptions import Conflict

    redis_client.set(keys.snapshot_lock(), "someone-else", ex=30)
    with pytest.raises(Conflict, match="in progress"):
        run_publish(redis_client, keys, write_artifacts(tmp_path / "a"))
    assert RedisSnapshotStore(redis_client, keys).active_version() is None


def test_older_kept_versions_expire_and_the_active_one_persists(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis
) -> None:
    artifacts = write_artifacts(tmp_path / "a")
    first = run_publish(redis_client, keys, artifacts, keep=2, ttl_s=3600)["version"]
    second = run_publish(redis_client, keys, artifacts, keep=2, ttl_s=3600)["version"]
    assert 0 < redis_client.ttl(c1_bucket(keys, first)) <= 3600
    assert redis_client.ttl(c1_bucket(keys, second)) == -1
    third = run_publish(redis_client, keys, artifacts, keep=2, ttl_s=3600)["version"]
    assert not redis_client.exists(c1_bucket(keys, first))  # beyond keep: deleted
    store = RedisSnapshotStore(redis_client, keys)
    assert store.rollback(keep=2, ttl_s=3600) == second
    assert redis_client.ttl(c1_bucket(keys, second)) == -1  # active again: persisted
    assert 0 < redis_client.ttl(c1_bucket(keys, third)) <= 3600


def test_publish_cli_publishes_lists_and_rolls_back(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CENTRIC_REDIS_URL", redis_url)
    monkeypatch.setenv("CENTRIC_ENV", keys.env)
    runner = CliRunner()
    artifacts = write_artifacts(tmp_path / "a")
    assert runner.invoke(app, ["publish", str(artifacts)]).exit_code == 0
    assert runner.invoke(app, ["publish", str(artifacts)]).exit_code == 0
    store = RedisSnapshotStore(redis_client, keys)
    newest, older = [v.version for v in store.versions()]
    listed = runner.invoke(app, ["publish", "--list"])
    assert listed.exit_code == 0 and newest in listed.output and older in listed.output
    rolled = runner.invoke(app, ["publish", "--rollback"])
    assert rolled.exit_code == 0 and older in rolled.output
    assert store.active_version() == older
    missing = runner.invoke(app, ["publish", str(tmp_path / "missing")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_publish_rejects_an_artifact_with_missing_columns(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis
) -> None:
    from recsys.exceptions import ArtifactError

    directory = tmp_path / "bad"
    directory.mkdir()
    pl.DataFrame({"customer_id": ["c1"], "item_id": ["i1"]}).write_parquet(directory / "recommendations.parquet")
    with pytest.raises(ArtifactError, match="recommendations.parquet lacks column"):
        run_publish(redis_client, keys, directory)


def test_oversized_lists_fall_back_to_unordered_verification_and_read_back(
    tmp_path: Path, keys: Keys, redis_client: redis.Redis
) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from recsys.store.base import SnapshotData
    from recsys.store.redis_reader import RedisSnapshotReader

    # 2000 entries × 7 B exceed the listpack value limit (1 KB as we configure it): Redis stores that bucket as a
    # hashtable.
    n = 2000
    recs = pl.DataFrame(
        {
            "customer_id": ["big"] * n + ["small"],
            "item_id": [f"i{j}" for j in range(n)] + ["i0"],
            "rank": list(range(1, n + 1)) + [1],
            "score": [1.0 - j / n for j in range(n)] + [0.5],
        }
    )
    store = RedisSnapshotStore(redis_client, keys)
    version = store.publish(SnapshotData(recommendations=recs)).version
    assert redis_client.object("encoding", c1_bucket(keys, version, "big")) == b"hashtable"

    async def read() -> tuple[object, object]:
        client = aioredis.Redis.from_url(_url(redis_client))
        reader = RedisSnapshotReader(client, keys)
        try:
            return (await reader.recommendations("big"))[0], (await reader.recommendations("small"))[0]
        finally:
            await client.aclose()

    big, small = asyncio.run(read())
    assert [i.item_id for i in big.items] == [f"i{j}" for j in range(n)]  # type: ignore[attr-defined]
    assert [i.item_id for i in small.items] == ["i0"]  # type: ignore[attr-defined]


def _url(client: redis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    auth = f":{kw['password']}@" if kw.get("password") else ""  # the embedded Redis has a password
    return f"redis://{auth}{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


def test_publish_with_keep_1_does_not_pull_the_version_readers_still_serve(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    """``keep=1`` (allowed: ``snapshot_keep ge=1``) UNLINKs the previous version right after the pointer moves.

    Workers keep the version they loaded until they re-read the pointer (``pointer_ttl_s``); in that window their
    bucket reads find nothing and a known customer is served the fallback list instead of their own. The test
    widens the window (``pointer_ttl_s``) only to make the interleaving deterministic.
    """
    art = write_artifacts(tmp_path / "art")
    run_publish(redis_client, keys, art, keep=1)
    headers = bearer(redis_url, keys, "read")

    async def body() -> tuple[Any, Any]:
        async with app_client(redis_url, keys) as http:
            http.app.state.store.pointer_ttl_s = 30.0  # type: ignore[attr-defined]
            before = (await http.get("/v1/customers/c1/recommendations", params={"k": 3}, headers=headers)).json()
            await asyncio.to_thread(run_publish, redis_client, keys, art, keep=1)  # the next nightly publish
            during = (await http.get("/v1/customers/c1/recommendations", params={"k": 3}, headers=headers)).json()
            return before, during

    before, during = asyncio.run(body())
    assert all(i["source"] == "personalized" for i in before["items"])
    assert [i["item_id"] for i in during["items"]] == [i["item_id"] for i in before["items"]], during
