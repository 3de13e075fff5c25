"""Issue 16 degraded mode over a long Redis outage: verified keys stay valid for the grace time, reads answer
degraded for the whole outage, writes 503, /readyz tells the truth, and the service recovers by itself."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from serving.auth import KeyCache
from tests.helpers.http import bearer, write_artifacts
from training.jobs.publish import run_publish

GRACE_S = 900.0
RECS = "/v1/customers/c1/recommendations"
EARN = "/v1/customers/c1/loyalty/earn"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class RestartableRedis:
    """A redis-server on one fixed port that can be killed and started again on the same port."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.directory)]
            + ["--appendonly", "yes", "--appendfsync", "always"],  # the data outlives a kill
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def flush_and_restart(self) -> None:
        shutil.rmtree(self.directory / "appendonlydir", ignore_errors=True)
        self.start()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def test_a_long_outage_keeps_reads_degraded_for_verified_keys_and_recovers(
    tmp_path: Path, restartable: RestartableRedis
) -> None:
    keys = Keys("outage")
    client = redis.Redis.from_url(restartable.url)
    run_publish(client, keys, write_artifacts(tmp_path / "art"))
    client.close()
    read, write = bearer(restartable.url, keys, "read"), bearer(restartable.url, keys, "write")
    clock = FakeClock()
    app = create_app(Settings(redis_url=restartable.url, env=keys.env, auth_grace_s=GRACE_S), gc_tuning=False)

    async def body() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with app.router.lifespan_context(app):
            app.state.key_cache = KeyCache(grace_s=GRACE_S, clock=clock)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                out["healthy"] = await http.get(RECS, params={"k": 2}, headers=read)
                await http.get("/v1/customers/c1/loyalty", headers=write)  # the write key is verified too
                await asyncio.to_thread(restartable.kill)
                clock.now += 60  # far past the 10 s cache: the key must not need Redis now
                out["after_1_min"] = await http.get(RECS, params={"k": 2}, headers=read)
                out["profile"] = await http.get("/v1/customers/c1/profile", headers=read)
                out["earn"] = await http.post(
                    EARN, json={"order_id": "o1", "amount": "5"}, headers={**write, "Idempotency-Key": "e1"}
                )
                out["readyz_down"] = await http.get("/readyz")
                clock.now += GRACE_S - 120  # 14 minutes into the outage
                out["after_14_min"] = await http.get(RECS, params={"k": 2}, headers=read)
                clock.now += 180  # past the grace time: the key can no longer be vouched for
                out["after_grace"] = await http.get(RECS, params={"k": 2}, headers=read)
                await asyncio.to_thread(restartable.flush_and_restart)  # back, but empty: no snapshot, keys gone
                out["readyz_back"] = await http.get("/readyz")
                out["after_recovery"] = await http.get(RECS, params={"k": 2}, headers=read)
        return out

    r = asyncio.run(body())
    assert r["healthy"].status_code == 200 and r["healthy"].json()["degraded"] is False
    for name in ("after_1_min", "after_14_min"):
        assert r[name].status_code == 200, (name, r[name].text)
        assert r[name].json()["degraded"] is True
        assert all(item["source"] == "fallback" for item in r[name].json()["items"])
    assert r["profile"].status_code == 503 and r["profile"].headers["retry-after"] == "1"
    assert r["earn"].status_code == 503 and r["earn"].json()["code"] == "store_unavailable"
    assert r["earn"].headers["retry-after"] == "1"
    ready = r["readyz_down"]
    assert ready.status_code == 503 and ready.json()["degraded"] is True and "degraded" in ready.json()["detail"]
    assert r["after_grace"].status_code == 503 and r["after_grace"].json()["code"] == "store_unavailable"
    # back by itself: Redis answers again (this one restarted empty, so the key is unknown and no snapshot is active)
    assert r["readyz_back"].status_code == 503 and r["readyz_back"].json()["code"] == "no_active_snapshot"
    assert r["after_recovery"].status_code == 401


def test_the_service_recovers_by_itself_when_the_same_redis_comes_back(tmp_path: Path) -> None:
    server = RestartableRedis(tmp_path / "redis")
    server.start()
    keys = Keys("recover")
    try:
        client = redis.Redis.from_url(server.url)
        run_publish(client, keys, write_artifacts(tmp_path / "art"))
        client.close()
        read = bearer(server.url, keys, "read")
        app = create_app(Settings(redis_url=server.url, env=keys.env), gc_tuning=False)

        async def body() -> list[httpx.Response]:
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                    before = await http.get(RECS, params={"k": 2}, headers=read)
                    await asyncio.to_thread(server.kill)
                    during = await http.get(RECS, params={"k": 2}, headers=read)
                    await asyncio.to_thread(server.start)
                    return [
                        before,
                        during,
                        await http.get("/readyz"),
                        await http.get(RECS, params={"k": 2}, headers=read),
                    ]

        before, during, ready, after = asyncio.run(body())
    finally:
        server.kill()
    assert before.json()["degraded"] is False and during.json()["degraded"] is True
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    assert after.status_code == 200 and after.json()["degraded"] is False
