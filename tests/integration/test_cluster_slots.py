"""Every Lua script keeps to one hash slot, and the service's stateful parts work on a real Redis Cluster.

Each script gets a case that drives the code path calling it (publish, the service over HTTP, the ledger) on a
real 3+3 cluster while every ``EVALSHA`` the code builds is recorded: each recorded call's keys must hash to one
slot (the cluster itself refuses a cross-slot script with ``CROSSSLOT``, so the case also fails there), and the
operation must have done its job. A new script without a case fails ``test_every_lua_script_has_a_cluster_case``.
Besides the scripts: event batches (a ``MULTI`` on the stream's slot) and their sync, offer counters, API keys.

Run alone: ``pytest -m cluster``.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.crc import key_slot

from recsys.events.store import EventStore
from recsys.events.sync import sync_events
from recsys.exceptions import Conflict
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.settings import Settings
from recsys.store import scripts
from recsys.store.connection import async_client, sync_client
from recsys.store.keys import Keys
from recsys.store.redis_reader import RedisSnapshotReader
from recsys.store.redis_store import RedisSnapshotStore
from serving.app import create_app
from serving.auth import create_api_key, list_api_keys, revoke_api_key
from tests.helpers.http import write_artifacts
from tests.redis_cluster import cluster_url_for_tests, drop_namespace
from training.jobs.publish import run_publish

PROGRAM = Path(__file__).resolve().parents[1] / "fixtures" / "loyalty.toml"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.xdist_group("redis-cluster"),
    pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) not installed"),
]

Calls = list[tuple[str, list[bytes]]]


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with cluster_url_for_tests(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url


@pytest.fixture
def ns(cluster_url: str) -> Iterator[Keys]:
    """A key namespace of this test on the cluster, deleted afterwards."""
    keys = Keys(f"tc{uuid.uuid4().hex[:10]}")
    yield keys
    client = sync_client(cluster_url)
    try:
        drop_namespace(client, keys.pattern())
    finally:
        client.close()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Every script call the code builds during the test: (script name, its keys as bytes)."""
    calls: Calls = []
    original = scripts.LuaScript.command

    def command(self: scripts.LuaScript, keys: Any, args: Any = ()) -> scripts.Command:
        calls.append((self.name, [k if isinstance(k, bytes) else str(k).encode() for k in keys]))
        return original(self, keys, args)

    monkeypatch.setattr(scripts.LuaScript, "command", command)
    return calls


def _http(url: str, keys: Keys, script: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Run ``script`` against the service (lifespan running) on ``url``, as `centric serve` builds it."""

    async def body() -> Any:
        app = create_app(Settings(redis_url=url, env=keys.env, loyalty_program=PROGRAM), gc_tuning=False)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                return await script(http)

    return asyncio.run(body())


def _key(url: str, keys: Keys, scope: str) -> dict[str, str]:
    client = sync_client(url)
    try:
        return {"Authorization": f"Bearer {create_api_key(client, keys, scope, name='cluster-test')}"}
    finally:
        client.close()


def _publish(url: str, keys: Keys, directory: Path) -> str:
    client = sync_client(url)
    try:
        return str(run_publish(client, keys, directory)["version"])
    finally:
        client.close()


# --- one case per script: drive the code that calls it, check it did its job --------------------------------------
def _publish_and_roll_back(url: str, keys: Keys, tmp: Path) -> None:
    first = _publish(url, keys, write_artifacts(tmp / "a", top_item="milk"))
    second = _publish(url, keys, write_artifacts(tmp / "b", top_item="tea"))
    client = sync_client(url)
    try:
        store = RedisSnapshotStore(client, keys)
        assert store.active_version() == second
        assert store.rollback() == first and store.active_version() == first
        store.activate(second)
        assert store.active_version() == second
        assert store.info(second)["counts"]["customers"] == 2
        assert client.get(keys.snapshot_lock()) is None  # released after each publish
    finally:
        client.close()


def _refresh_the_publish_lock(url: str, keys: Keys, _tmp: Path) -> None:
    client = sync_client(url)
    try:
        store = RedisSnapshotStore(client, keys)
        assert client.set(keys.snapshot_lock(), "v-ours", nx=True, px=2000)
        store.refresh_lock("v-ours")
        assert client.pttl(keys.snapshot_lock()) > 2000  # extended to the publish lock's TTL
        with pytest.raises(Conflict, match="taken by v-ours"):
            store.refresh_lock("v-theirs")
    finally:
        client.close()


def _serve_recommendations(url: str, keys: Keys, tmp: Path) -> None:
    _publish(url, keys, write_artifacts(tmp / "a", top_item="milk"))
    read, write = _key(url, keys, "read"), _key(url, keys, "write")

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        before = await http.get("/v1/customers/c1/recommendations?k=3", headers=read)
        bought = await http.post(
            "/v1/events",
            headers=write,
            json={"events": [{"type": "purchase", "customer_id": "c1", "item_id": "eggs", "quantity": 1}]},
        )
        after = await http.get("/v1/customers/c1/recommendations?k=3", headers=read)
        similar = await http.get("/v1/items/milk/similar?k=2", headers=read)
        return [before, bought, after, similar]

    before, bought, after, similar = _http(url, keys, script)
    assert before.status_code == 200, before.text
    assert [r["item_id"] for r in before.json()["items"]][:1] == ["milk"]
    assert bought.status_code in (200, 202), bought.text
    assert "eggs" not in [r["item_id"] for r in after.json()["items"]]  # the live purchase, read in the same script
    assert [r["item_id"] for r in similar.json()["items"]] == ["eggs", "bread"]

    async def without_mux() -> Any:  # the redis-py cluster client's path (TLS clusters): one read_recs script call
        client = async_client(url)
        try:
            return await RedisSnapshotReader(client, keys).recommendations("c1")
        finally:
            await client.aclose()

    ranked, recent = asyncio.run(without_mux())
    assert ranked is not None and ranked.items[0].item_id == "milk" and "eggs" in recent


def _loyalty_over_http(url: str, keys: Keys, _tmp: Path) -> None:
    write, read = _key(url, keys, "write"), _key(url, keys, "read")
    customers = [f"cust-{n}" for n in range(6)]  # spread over the three masters

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        out = []
        for customer in customers:
            earn = {"order_id": f"o-{customer}", "amount": "1000.00"}
            headers = {**write, "Idempotency-Key": f"e-{customer}"}
            out.append(await http.post(f"/v1/customers/{customer}/loyalty/earn", json=earn, headers=headers))
            out.append(await http.post(f"/v1/customers/{customer}/loyalty/earn", json=earn, headers=headers))
            redeem = {"reward_id": "coffee", "quantity": 1}
            out.append(
                await http.post(
                    f"/v1/customers/{customer}/loyalty/redeem",
                    json=redeem,
                    headers={**write, "Idempotency-Key": f"r-{customer}"},
                )
            )
            out.append(await http.get(f"/v1/customers/{customer}/loyalty", headers=read))
        return out

    replies = _http(url, keys, script)
    for n in range(len(customers)):
        earned, replay, redeemed, standing = replies[4 * n : 4 * n + 4]
        assert earned.status_code == 200, earned.text
        assert replay.json()["replayed"] and replay.json()["balance"] == earned.json()["balance"]
        assert redeemed.status_code == 200, redeemed.text
        assert standing.json()["balance"] == earned.json()["balance"] - 300
    client = sync_client(url)
    try:
        ledger = RedisLedger(client, keys, load_program(PROGRAM))
        assert ledger.stock("coffee") == 100_000 - len(customers)
        assert set(ledger.customers()) == set(customers)
    finally:
        client.close()


def _offer_events(url: str, keys: Keys, _tmp: Path) -> None:
    write = _key(url, keys, "write")
    batch = {
        "events": [
            {"type": "impression", "customer_id": f"c{n}", "offer_id": "o1", "channel": "app", "arm": "nba"}
            for n in range(5)
        ]
        + [{"type": "redeem", "customer_id": "c1", "offer_id": "o1"}]
    }

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        keyed = {**write, "Idempotency-Key": "batch-1"}
        return [await http.post("/v1/events", json=batch, headers=keyed) for _ in range(2)]

    first, retry = _http(url, keys, script)
    assert first.status_code in (200, 202) and retry.status_code in (200, 202), (first.text, retry.text)
    client = sync_client(url)
    try:
        budget = client.hgetall(keys.nba_budget("o1"))
        assert int(budget[b"impressions"]) == 5 and int(budget[b"redemptions"]) == 1  # the retry counted nothing
        assert int(budget[b"impressions:nba"]) == 5
        assert client.xlen(keys.events_stream()) == len(batch["events"])  # the stream write too, once
        contacts = client.hgetall(keys.nba_contacts("c1"))
        assert int(contacts[b"redn:o1"]) == 1
    finally:
        client.close()


def _rate_limited_requests(url: str, keys: Keys, tmp: Path) -> None:
    _publish(url, keys, write_artifacts(tmp / "a", top_item="milk"))
    read = _key(url, keys, "read")

    async def body() -> list[int]:
        settings = Settings(
            redis_url=url, env=keys.env, loyalty_program=PROGRAM, rate_limit_per_s=1, rate_limit_burst=2
        )
        app = create_app(settings, gc_tuning=False)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                return [
                    (await http.get("/v1/customers/c1/recommendations?k=3", headers=read)).status_code for _ in range(8)
                ]

    codes = asyncio.run(body())
    assert codes[0] == 200 and 429 in codes, codes  # the key's bucket (one slot) is kept on the cluster


SCRIPT_CASES: dict[str, Callable[[str, Keys, Path], None]] = {
    "rate_limit": _rate_limited_requests,
    "ledger": _loyalty_over_http,
    "stock": _loyalty_over_http,
    "verify_bucket": _publish_and_roll_back,
    "activate_version": _publish_and_roll_back,
    "release_lock": _publish_and_roll_back,
    "refresh_lock": _refresh_the_publish_lock,
    "read_recs": _serve_recommendations,
    "hash_update": _offer_events,
}


def test_every_lua_script_has_a_cluster_case() -> None:
    assert set(SCRIPT_CASES) == {script.name for script in scripts.BY_SHA.values()}


@pytest.mark.parametrize("script", sorted(SCRIPT_CASES))
def test_each_call_of_the_script_touches_one_slot_on_the_cluster(
    script: str, cluster_url: str, ns: Keys, recorded: Calls, tmp_path: Path
) -> None:
    SCRIPT_CASES[script](cluster_url, ns, tmp_path)
    calls = [keys for name, keys in recorded if name == script]
    assert calls, f"the {script} case never called lua/{script}.lua"
    for keys in calls:
        slots = {key_slot(key) for key in keys}
        assert len(slots) == 1, f"lua/{script}.lua called on keys of {len(slots)} slots: {keys}"


# --- the rest of the stateful service on the cluster -------------------------------------------------------------
def test_api_keys_authenticate_and_revoke_on_the_cluster(cluster_url: str, ns: Keys) -> None:
    read = _key(cluster_url, ns, "read")
    key_id = read["Authorization"].removeprefix("Bearer ck_").split("_")[0]

    async def probe(http: httpx.AsyncClient) -> int:
        return (await http.get("/v1/customers/c1/loyalty", headers=read)).status_code

    assert _http(cluster_url, ns, probe) == 200
    client = sync_client(cluster_url)
    try:
        assert [k["id"] for k in list_api_keys(client, ns)] == [key_id]
        assert revoke_api_key(client, ns, key_id)
    finally:
        client.close()
    assert _http(cluster_url, ns, probe) == 401  # a fresh worker: no cached record


def test_events_sync_drains_the_stream_once_on_the_cluster(cluster_url: str, ns: Keys, tmp_path: Path) -> None:
    write = _key(cluster_url, ns, "write")
    events = [{"type": "purchase", "customer_id": f"c{n}", "item_id": "milk", "quantity": 1} for n in range(30)]

    async def script(http: httpx.AsyncClient) -> list[int]:
        return [(await http.post("/v1/events", json={"events": events[i : i + 10]}, headers=write)).status_code
                for i in range(0, 30, 10)]  # fmt: skip

    assert all(status in (200, 202) for status in _http(cluster_url, ns, script))
    client = sync_client(cluster_url)
    try:
        store = EventStore(tmp_path / "events")
        first = sync_events(client, ns, store, batch=7)
        again = sync_events(client, ns, store)
        assert (first.events, first.backlog, again.events) == (30, 0, 0)
        assert store.checkpoint().events == 30
        assert client.xlen(ns.events_stream()) == 0  # trimmed up to what is stored
    finally:
        client.close()
