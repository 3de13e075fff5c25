"""Loyalty writes through the app's multiplexed connection (``MuxRedis``) answer exactly what the redis-py path answers.

``serving.services.loyalty`` sends every batch of the loyalty flow (the ledger's EVALSHA with the customer index's
SADD when due, a redeem's reads and stock calls) through ``app.state.mux`` when the app has one, and through the
redis-py client when it does not (TLS, RESP3, ...). The same requests run on fresh namespaces once each way and must
give the same statuses and bytes; the mux path must also reload the script after a ``SCRIPT FLUSH`` (NOSCRIPT), for
single and for concurrent writes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys.settings import Settings
from recsys.store import scripts
from recsys.store.keys import Keys
from serving.app import create_app
from serving.hotpath.redis_mux import MuxRedis
from serving.services import loyalty as service
from tests.helpers.http import bearer, clear_namespace, loyalty_requests

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
Body = Callable[[Any, httpx.AsyncClient, dict[str, str], Keys], Coroutine[Any, Any, Any]]


def _in_app(
    redis_url: str, mux: bool, monkeypatch: pytest.MonkeyPatch, body: Body
) -> tuple[Any, list[tuple[Any, ...]]]:
    """Run ``body(app, http, write_headers, keys)`` on a fresh namespace, with or without the app's mux.

    Returns what ``body`` returned and the commands the mux was asked to send.
    """
    keys = Keys(env=f"t{uuid.uuid4().hex[:12]}")
    w = bearer(redis_url, keys, "write")
    sent: list[tuple[Any, ...]] = []
    original = MuxRedis.execute

    async def spy(self: MuxRedis, *commands: Any) -> list[Any]:
        sent.extend(commands)
        return await original(self, *commands)

    async def run() -> Any:
        app = create_app(Settings(redis_url=redis_url, env=keys.env, loyalty_program=PROGRAM), gc_tuning=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http,
        ):
            assert (app.state.mux is not None) is mux
            return await body(app, http, w, keys)

    with monkeypatch.context() as patch:
        patch.setattr(MuxRedis, "execute", spy)
        patch.setattr(service, "utcnow", lambda: NOW)
        if not mux:
            patch.setattr(MuxRedis, "for_client", classmethod(lambda cls, client: None))
        try:
            return asyncio.run(run()), sent
        finally:
            clear_namespace(redis_url, keys)


async def _requests(app: Any, http: httpx.AsyncClient, w: dict[str, str], keys: Keys) -> list[httpx.Response]:
    """The fast-write comparison script (replays, conflicts, 404, 422s, redeem), then concurrent earns."""
    r = bearer(str(app.state.settings.redis_url), keys, "read")
    out = [await http.request(method, url, **kwargs) for method, url, kwargs in loyalty_requests(w, r)]

    async def earn(cid: str, n: int, key: str) -> httpx.Response:
        return await http.post(
            f"/v1/customers/{cid}/loyalty/earn",
            json={"order_id": f"o{n}", "amount": str(5 + n)},
            headers={**w, "Idempotency-Key": key},
        )

    # one write per customer per round, so the answers do not depend on the interleaving
    for n in range(3):
        out += await asyncio.gather(*(earn(f"m{c}", n, f"k{n}") for c in range(20)))
    out += await asyncio.gather(*(earn(f"m{c}", 1, "k1") for c in range(20)))  # replays
    out += await asyncio.gather(*(earn(f"m{c}", 1, "k9") for c in range(20)))  # duplicate orders: 409
    out += [await http.get(f"/v1/customers/m{c}/loyalty", headers=r) for c in range(3)]
    out.append(await http.get("/metrics"))
    return out


def test_mux_and_redis_py_paths_answer_the_same(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    muxed, sent = _in_app(redis_url, True, monkeypatch, _requests)
    plain, unsent = _in_app(redis_url, False, monkeypatch, _requests)
    assert unsent == []
    evalshas = [c for c in sent if c[0] == "EVALSHA" and c[1] == scripts.LEDGER.sha]
    # the script's ledger steps (7 earns, 5 reverses, the redeem's debit; fast or routed) + 100 concurrent earns
    assert len(evalshas) == 13 + 100, len(evalshas)
    assert sum(c[0] == "SADD" for c in sent) >= 1 + 20  # c1, cé, m0..m19 indexed through the mux
    for i, (a, b) in enumerate(zip(muxed[:-1], plain[:-1], strict=True)):
        assert (a.status_code, a.content) == (b.status_code, b.content), f"request {i}"
        assert a.headers["content-type"] == b.headers["content-type"], f"request {i}"
    statuses = [x.status_code for x in muxed]
    assert statuses[-84:-24] == [200] * 60 and statuses[-24:-4] == [409] * 20
    assert all(x.json()["replayed"] for x in muxed[-44:-24])
    for line in ('centric_errors_total{code="duplicate_order"}', 'centric_errors_total{code="unknown_order"}'):
        assert [x for x in muxed[-1].text.splitlines() if x.startswith(line)] == [
            x for x in plain[-1].text.splitlines() if x.startswith(line)
        ]


async def _flushes(app: Any, http: httpx.AsyncClient, w: dict[str, str], keys: Keys) -> list[httpx.Response]:
    async def earn(cid: str, key: str, amount: int = 5) -> httpx.Response:
        return await http.post(
            f"/v1/customers/{cid}/loyalty/earn",
            json={"order_id": key, "amount": str(amount)},
            headers={**w, "Idempotency-Key": key},
        )

    out = [await earn("s1", "a")]
    await app.state.redis.script_flush()
    out.append(await earn("s1", "b"))  # indexed already: EVALSHA alone gets NOSCRIPT
    await app.state.redis.script_flush()
    out.append(await earn("s2", "a"))  # not indexed: SADD + EVALSHA, the EVALSHA gets NOSCRIPT
    await app.state.redis.script_flush()
    out += await asyncio.gather(*(earn(f"p{i}", "a") for i in range(8)), *(earn("s1", f"c{i}", 1) for i in range(8)))
    out.append(await earn("s1", "b"))  # a replay after all that
    assert await app.state.redis.smembers(keys.loyalty_customers()) == {
        b"s1",
        b"s2",
        *(f"p{i}".encode() for i in range(8)),
    }
    return out


def test_a_mux_write_survives_a_script_flush(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    muxed, sent = _in_app(redis_url, True, monkeypatch, _flushes)
    plain, _ = _in_app(redis_url, False, monkeypatch, _flushes)
    assert [x.status_code for x in muxed] == [200] * len(muxed), [x.text for x in muxed]
    evalshas = [c for c in sent if c[0] == "EVALSHA" and c[1] == scripts.LEDGER.sha]
    # 20 steps sent once; "b", "s2" and the 16 concurrent ones (all out before the first reload) sent again
    assert len(evalshas) == 20 + 2 + 16, len(evalshas)
    first, second, s2 = (x.json() for x in muxed[:3])
    assert second["balance"] == first["balance"] + 5 and not second["replayed"]
    assert s2["entry"]["id"] == "s2:1"
    s1_entries = sorted((x.json()["entry"]["id"] for x in muxed[11:19]), key=lambda e: int(e.split(":")[1]))
    assert s1_entries == [f"s1:{n}" for n in range(3, 11)]  # each concurrent write applied exactly once
    assert muxed[-1].json()["replayed"] and muxed[-1].json()["entry"] == second["entry"]
    assert max(x.json()["balance"] for x in muxed[11:19]) == second["balance"] + 8
    assert [x.content for x in muxed[:11]] == [x.content for x in plain[:11]]
