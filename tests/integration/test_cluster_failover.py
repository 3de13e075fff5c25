"""A master of a real Redis Cluster is killed under loyalty write traffic; its replica takes over.

The service runs with ``CENTRIC_LEDGER_WAIT_REPLICAS=1``: a ledger write is acknowledged (HTTP 200) only after
``WAIT 1`` confirmed a replica has it, and every node runs ``appendfsync always``. Writers retry a refused write
(503) with the same Idempotency-Key, as the API asks clients to. After the failover every acknowledged write is in
the ledger with the points it was acknowledged with, none is applied twice, and reads come back on the same service
instance (no restart). Run alone: ``pytest -m cluster``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.settings import Settings
from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from serving.app import create_app
from serving.auth import create_api_key
from serving.hotpath.redis_cluster_mux import ClusterMux
from tests.redis_cluster import LocalRedisCluster, cluster_from_env

PROGRAM = Path(__file__).resolve().parents[1] / "fixtures" / "loyalty.toml"
WRITES = 160
WRITERS = 4
KILL_AFTER = 40  # acknowledged writes before the master is killed

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.xdist_group("redis-cluster"),
    pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) not installed"),
    pytest.mark.skipif(cluster_from_env() is not None, reason="kills a node: needs its own private cluster"),
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path / "redis-cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _customers_on(cluster: LocalRedisCluster, keys: Keys, n: int) -> tuple[int, list[str]]:
    """(a master's port, ``n`` customer ids whose ledger lives on it)."""
    victim = cluster.master_of(keys.loyalty_account("cust-0"))
    found = [c for c in (f"cust-{i}" for i in range(400)) if cluster.master_of(keys.loyalty_account(c)) == victim]
    return victim, found[:n]


def test_acknowledged_ledger_writes_survive_a_master_failover_and_reads_recover(cluster: LocalRedisCluster) -> None:
    keys = Keys("failover")
    victim, customers = _customers_on(cluster, keys, 6)
    client = sync_client(cluster.url)
    try:
        auth = {"Authorization": f"Bearer {create_api_key(client, keys, 'write')}"}
    finally:
        client.close()
    settings = Settings(
        redis_url=cluster.url, env=keys.env, loyalty_program=PROGRAM, ledger_wait_replicas=1, ledger_wait_timeout_ms=500
    )
    acked: dict[str, dict[str, Any]] = {}  # idempotency key -> the acknowledged answer
    refused: list[int] = []
    timeline: dict[str, float] = {}

    async def write(http: httpx.AsyncClient, n: int) -> None:
        customer = customers[n % len(customers)]
        body = {"order_id": f"o-{n}", "amount": "10.00"}
        headers = {**auth, "Idempotency-Key": f"k-{n}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = await http.post(f"/v1/customers/{customer}/loyalty/earn", json=body, headers=headers)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                acked[f"k-{n}"] = {"customer": customer, **answer.json()}
                return
            refused.append(answer.status_code if answer is not None else 0)
            await asyncio.sleep(0.05)
        raise AssertionError(f"write k-{n} was never acknowledged (last answers {refused[-3:]})")

    async def writers(http: httpx.AsyncClient) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(WRITES):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                await write(http, queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(WRITERS)))

    async def fail_over(http: httpx.AsyncClient) -> None:
        while len(acked) < KILL_AFTER:
            await asyncio.sleep(0.01)
        timeline["killed"] = time.monotonic()
        await asyncio.to_thread(cluster.kill, victim)
        key = keys.loyalty_account(customers[0])
        while not await asyncio.to_thread(cluster.promoted, key, victim):
            await asyncio.sleep(0.1)
        timeline["promoted"] = time.monotonic()
        # reads of the failed-over customers come back on this same service instance
        while (await http.get(f"/v1/customers/{customers[0]}/loyalty", headers=auth)).status_code != 200:
            await asyncio.sleep(0.05)
        timeline["read_back"] = time.monotonic()
        # until a replica serves the new master again, WAIT 1 refuses its writes (503): bring the old node back
        await asyncio.to_thread(cluster.restart, victim)

    async def body() -> None:
        app = create_app(settings, gc_tuning=False)
        async with app.router.lifespan_context(app):
            assert isinstance(app.state.mux, ClusterMux)  # the fast path runs on the cluster, one mux per master
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                await asyncio.wait_for(asyncio.gather(writers(http), fail_over(http)), timeout=90)

    asyncio.run(body())

    assert len(acked) == WRITES
    assert refused, "no write was refused: the master died outside the write traffic"
    assert timeline["read_back"] - timeline["killed"] < 15
    client = sync_client(cluster.url)
    try:
        assert cluster.master_of(keys.loyalty_account(customers[0])) != victim  # the replica was promoted
        ledger = RedisLedger(client, keys, load_program(PROGRAM))
        for customer in customers:
            mine = {key: a for key, a in acked.items() if a["customer"] == customer}
            earned = [e for e in ledger.entries(customer) if e["type"] == "earn"]
            assert sorted(e["idempotency_key"] for e in earned) == sorted(mine), customer  # each once, none lost
            by_key = {e["idempotency_key"]: e for e in earned}
            assert all(by_key[key]["points"] == a["entry"]["points"] for key, a in mine.items())
            last = max(mine.values(), key=lambda a: int(a["entry"]["id"].rpartition(":")[2]))
            assert ledger.account(customer)["balance"] == last["balance"]  # the last write's answer is the state
    finally:
        client.close()
