"""The hot path and the routed API answer the same bytes, and the hot route table follows the routers.

The same requests run twice, each time on a fresh namespace of the same Redis holding the same snapshot: once on
the app as served (hot path on), once with ``create_app(hotpath=False)`` (every request routed). Status, the
headers a client reads and the body must be byte for byte the same, and the hot path must have answered the
requests it is meant to answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import APIRouter, Depends

from recsys import clock
from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from serving.hotpath import reads, writes
from serving.hotpath.reads import FastReadPath
from serving.hotpath.routes import derive_routes
from serving.hotpath.writes import FastWritePath
from serving.routers import ROUTERS
from serving.routers import recommendations as recommendations_router
from tests.helpers.http import bearer, clear_namespace, write_artifacts
from training.jobs.publish import run_publish

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "loyalty.toml"
NOW = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
HEADERS = ("content-type", "content-length", "www-authenticate", "retry-after")


def _requests(r: dict[str, str], w: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    recs, earn = "/v1/customers/c1/recommendations", "/v1/customers/c1/loyalty/earn"
    return [
        ("GET", recs, {"params": {"k": 3, "exclude": "eggs"}, "headers": r}),
        ("GET", recs, {"params": {"k": 2, "category": "dairy", "channel": "web"}, "headers": r}),
        ("GET", recs, {"params": {"k": 0}, "headers": r}),  # 422
        ("GET", recs, {"params": {"limit": 3}, "headers": r}),  # 422 unknown parameter
        ("GET", recs, {"params": [("k", "2"), ("k", "3")], "headers": r}),  # routed: the last value counts
        ("GET", recs, {"headers": {"Authorization": "Bearer ck_unknown_key"}}),  # 401
        ("GET", "/v1/customers/nobody/recommendations", {"params": {"k": 2}, "headers": r}),  # fallback
        ("GET", f"/v1/customers/{'c' * 129}/recommendations", {"headers": r}),  # 422 id too long
        ("GET", "/v1/customers/c1/profile", {"headers": r}),
        ("GET", "/v1/customers/c1/profile", {"params": {"k": 1}, "headers": r}),  # 422
        ("GET", "/v1/customers/c2/profile", {"headers": r}),  # 404
        ("GET", "/v1/items/milk/similar", {"params": {"k": 2}, "headers": r}),
        ("GET", "/v1/items/nothing/similar", {"headers": r}),  # 404
        ("POST", earn, {"json": {"order_id": "o1", "amount": "25.50"}, "headers": {**w, "Idempotency-Key": "k1"}}),
        ("POST", earn, {"json": {"order_id": "o1", "amount": "25.50"}, "headers": {**w, "Idempotency-Key": "k1"}}),
        ("POST", earn, {"json": {"order_id": "o1", "amount": "26"}, "headers": {**w, "Idempotency-Key": "k1"}}),
        ("POST", earn, {"json": {"order_id": "o2", "amount": "1"}, "headers": {**w, "Idempotency-Key": "x" * 201}}),
        ("POST", earn, {"json": {"order_id": "o3", "amount": "1"}, "headers": {**r, "Idempotency-Key": "k3"}}),  # 403
        (
            "POST",
            earn.replace("earn", "reverse"),
            {"json": {"order_id": "o1"}, "headers": {**w, "Idempotency-Key": "v"}},
        ),
        ("GET", "/v1/customers/c1/loyalty", {"headers": r}),
    ]


# requests (by index) the hot path answers itself when it is on
HOT = {0, 1, 6, 8, 11, 13, 14, 15, 18}


def _run(
    redis_url: str, hotpath: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[list[httpx.Response], set[int], bytes]:
    """Publish the snapshot on a fresh namespace, send every request; return the answers, the hot ones' indices
    and the published version (the one byte string that differs between two runs)."""
    keys = Keys(env=f"t{uuid.uuid4().hex[:12]}")
    client = redis.Redis.from_url(redis_url)
    try:
        version = run_publish(client, keys, write_artifacts(tmp_path / f"art-{keys.env}"))
    finally:
        client.close()
    r, w = bearer(redis_url, keys, "read"), bearer(redis_url, keys, "write")
    current, answered = [-1], set()
    read_answer, write_answer = FastReadPath._answer, FastWritePath._answer

    async def read_spy(self: FastReadPath, *args: Any) -> bytes | None:
        out = await read_answer(self, *args)
        if out is not None:
            answered.add(current[0])
        return out

    async def write_spy(self: FastWritePath, *args: Any) -> bool:
        done = await write_answer(self, *args)
        if done:
            answered.add(current[0])
        return done

    async def body() -> list[httpx.Response]:
        settings = Settings(redis_url=redis_url, env=keys.env, loyalty_program=PROGRAM)
        app = create_app(settings, gc_tuning=False, hotpath=hotpath)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http,
        ):
            # warm up: cache both keys and load the loyalty program (as any running service has)
            for headers in (r, w):
                assert (await http.get("/v1/customers/c0/loyalty", headers=headers)).status_code == 200
            out = []
            for i, (method, url, kwargs) in enumerate(_requests(r, w)):
                current[0] = i
                out.append(await http.request(method, url, **kwargs))
            return out

    with monkeypatch.context() as patch, clock.frozen(NOW):
        patch.setattr(FastReadPath, "_answer", read_spy)
        patch.setattr(FastWritePath, "_answer", write_spy)
        try:
            return asyncio.run(body()), answered, str(version["version"]).encode()
        finally:
            clear_namespace(redis_url, keys)


def test_the_hot_path_answers_the_same_bytes_as_the_routes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hot, hot_answered, hot_version = _run(redis_url, True, monkeypatch, tmp_path)
    routed, routed_answered, routed_version = _run(redis_url, False, monkeypatch, tmp_path)
    assert routed_answered == set()
    assert hot_answered == HOT
    for i, (a, b) in enumerate(zip(hot, routed, strict=True)):
        assert a.status_code == b.status_code, f"request {i}: {a.text} / {b.text}"
        assert [a.headers.get(h) for h in HEADERS] == [b.headers.get(h) for h in HEADERS], f"request {i}"
        assert a.content == b.content.replace(routed_version, hot_version), f"request {i}"
    assert [x.status_code for x in hot] == [
        *(200, 200, 422, 422, 200, 401, 200, 422, 200, 422, 404, 200, 404),
        *(200, 200, 409, 422, 403, 200, 200),
    ]


def test_the_hot_table_is_derived_from_the_routers() -> None:
    table = derive_routes(ROUTERS, reads.HANDLERS) + derive_routes(ROUTERS, writes.HANDLERS)
    assert sorted((h.method, h.path, h.scope) for h in table) == [
        ("GET", "/v1/customers/{customer_id}/profile", "read"),
        ("GET", "/v1/customers/{customer_id}/recommendations", "read"),
        ("GET", "/v1/items/{item_id}/similar", "read"),
        ("POST", "/v1/customers/{customer_id}/loyalty/earn", "write"),
        ("POST", "/v1/customers/{customer_id}/loyalty/reverse", "write"),
    ]
    recs = next(h for h in table if h.path.endswith("recommendations"))
    assert recs.entity("/v1/customers/c1/recommendations") == "c1"
    assert recs.entity(f"/v1/customers/{'c' * 129}/recommendations") is None  # the route's own max_length
    assert recs.allowed_query == {"k", "category", "exclude", "channel"}


def test_a_new_rule_on_an_endpoint_takes_it_off_the_hot_path(caplog: pytest.LogCaptureFixture) -> None:
    async def business_hours() -> None:
        """A rule the hot path knows nothing about."""

    router = APIRouter(prefix="/v1")
    router.add_api_route(
        "/customers/{customer_id}/recommendations",
        recommendations_router.get_recommendations,
        dependencies=[Depends(recommendations_router.require_scope("read")), Depends(business_hours)],
    )
    assert derive_routes([router], reads.HANDLERS) == ()
    assert "business_hours" in caplog.text and "routed path only" in caplog.text
