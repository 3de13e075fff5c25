"""Several `centric serve` processes on one Redis are stateless replicas: the same answers, the same new version
within about a second of a publish, and a revoked key refused by all of them within the auth cache's lifetime."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from recsys.store.keys import Keys
from serving.auth import CACHE_TTL_S, revoke_api_key
from tests.helpers.http import ROOT, bearer, write_artifacts
from training.jobs.publish import run_publish

REPLICAS = 3
POINTER_TTL_S = 1.0  # RedisSnapshotReader's pointer cache: a replica reads the active version at most this stale


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _replicas(redis_url: str, keys: Keys, tmp: Path) -> Iterator[list[str]]:
    """Start REPLICAS `centric serve` processes at once (each its own port, one Redis); yield their base URLs."""
    ports = [_port() for _ in range(REPLICAS)]
    env = {**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env, "CENTRIC_HOME": str(tmp)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "training.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            _until(lambda b=base: _status(f"{b}/healthz") == 200, 60, f"{base} did not start")
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _until(check: Callable[[], bool], seconds: float, message: str) -> float:
    """Poll ``check`` every 50 ms; return the seconds it took, or fail with ``message``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(message)
        time.sleep(0.05)
    return time.monotonic() - started


def _recs(base: str, headers: dict[str, str]) -> dict:
    answer = httpx.get(f"{base}/v1/customers/c1/recommendations?k=3", headers=headers, timeout=2)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.slow  # three processes to start and the auth cache's 10 s to outwait: about 30 s on 2 shared cores
def test_replicas_agree_switch_versions_together_and_drop_a_revoked_key(
    redis_url: str, redis_client, keys: Keys, tmp_path: Path
) -> None:
    first = run_publish(redis_client, keys, write_artifacts(tmp_path / "v1", top_item="milk"))["version"]
    read = bearer(redis_url, keys, "read")
    with _replicas(redis_url, keys, tmp_path) as bases:
        answers = [_recs(base, read) for base in bases]
        assert all(a == answers[0] for a in answers)  # the same answer from every replica
        assert answers[0]["version"] == first and answers[0]["items"][0]["item_id"] == "milk"

        second = run_publish(redis_client, keys, write_artifacts(tmp_path / "v2", top_item="tea"))["version"]
        published = time.monotonic()
        for base in bases:
            _until(lambda b=base: _recs(b, read)["version"] == second, 5, f"{base} kept serving {first}")
        assert time.monotonic() - published < POINTER_TTL_S + 2.0  # every replica within the pointer cache, + slack
        assert all(_recs(base, read)["items"][0]["item_id"] == "tea" for base in bases)

        key_id = read["Authorization"].removeprefix("Bearer ck_").split("_")[0]
        assert revoke_api_key(redis_client, keys, key_id)
        revoked = time.monotonic()
        url = "/v1/customers/c1/recommendations"
        for base in bases:
            _until(lambda b=base: _status(b + url, read) == 401, CACHE_TTL_S + 5, f"{base} still accepts the key")
        assert time.monotonic() - revoked < CACHE_TTL_S + 2.0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # the replicas are on loopback: never route the test's requests through a proxy from the environment
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
