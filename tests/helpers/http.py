"""Helpers for the HTTP end-to-end tests: a small artifact directory and an app client on real Redis."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from recsys.settings import Settings
from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from serving.app import create_app
from serving.auth import create_api_key
from serving.hotpath.http_protocol import PROTOCOL

ROOT = Path(__file__).resolve().parents[2]


def write_artifacts(directory: Path, *, top_item: str = "milk") -> Path:
    """Write a tiny artifact directory (recommendations, similar, fallbacks, items, profiles); return it."""
    directory.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c1", "c2"],
            "item_id": [top_item, "eggs", "tea", "jam", "eggs"],
            "rank": pl.Series([1, 2, 3, 4, 1], dtype=pl.Int32),
            "score": pl.Series([0.9, 0.6, 0.5, 0.4, 0.7], dtype=pl.Float32),
            "source": ["personalized"] * 5,
            "reason": ["customers like you bought it"] * 5,
        }
    ).write_parquet(directory / "recommendations.parquet")
    pl.DataFrame(
        {
            "item_id": ["milk", "milk", "eggs"],
            "similar_item_id": ["eggs", "bread", "jam"],
            "rank": [1, 2, 1],
            "score": [0.8, 0.6, 0.5],
        }
    ).write_parquet(directory / "similar_items.parquet")
    pl.DataFrame(
        {
            "list": ["popular", "popular", "popular", "trending", "category:bakery"],
            "item_id": ["bread", "milk", "coffee", "coffee", "bread"],
            "rank": [1, 2, 3, 1, 1],
            "score": [9.0, 8.0, 7.0, 5.0, 4.0],
        }
    ).write_parquet(directory / "fallbacks.parquet")
    pl.DataFrame(
        {
            "item_id": ["milk", "eggs", "tea", "jam", "bread", "coffee", "caviar"],
            "name": ["Milk", "Eggs", "Tea", "Jam", "Bread", "Coffee", "Caviar"],
            "category": ["dairy", "dairy", "drinks", "spreads", "bakery", "drinks", "luxury"],
            "price": [1.0, 2.0, 3.0, 2.5, 1.5, 4.0, 99.0],
            "in_stock": [True, True, True, True, True, True, False],
            "repeat_category": [True, False, False, False, True, False, False],
        }
    ).write_parquet(directory / "items.parquet")
    pl.DataFrame(
        {
            "customer_id": ["c1"],
            "segment": ["champions"],
            "lifecycle": ["active"],
            "clv": [150.0],
            "p_alive": [0.9],
            "orders": [14],
        }
    ).write_parquet(directory / "profiles.parquet")
    return directory


@contextlib.asynccontextmanager
async def app_client(redis_url: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an httpx client bound to a freshly built app (lifespan running) on the test's namespace."""
    app = create_app(Settings(redis_url=redis_url, env=keys.env), gc_tuning=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://centric.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def bearer(redis_url: str, keys: Keys, scope: str) -> dict[str, str]:
    """Create an API key with ``scope`` and return the Authorization header for it."""
    client = sync_client(redis_url)
    try:
        return {"Authorization": f"Bearer {create_api_key(client, keys, scope, name='test')}"}
    finally:
        client.close()


@contextlib.contextmanager
def uvicorn_server(redis_url: str, keys: Keys, **env: str) -> Iterator[str]:
    """Run the app in a uvicorn subprocess as ``centric serve`` does (one-write protocol); yield its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--http",
            PROTOCOL,
        ],
        cwd=ROOT,
        env={**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env, **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"uvicorn did not answer /healthz on {base} within 30 s")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def clear_namespace(redis_url: str, keys: Keys) -> None:
    """Delete every key of the ``keys`` namespace (between two runs inside one test)."""
    client = sync_client(redis_url)
    try:
        for key in client.scan_iter(match=keys.pattern(), count=1000):
            client.delete(key)
    finally:
        client.close()


NaN_TEXT = "NaN"
EARN = "/v1/customers/c1/loyalty/earn"
REVERSE = "/v1/customers/c1/loyalty/reverse"


def loyalty_requests(w: dict[str, str], r: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Loyalty requests for customer c1 that exercise every answer of the write path (200, 401, 403, 409, 422).

    Each is (method, url, httpx keyword arguments), in order; ``w``/``r`` are write/read key headers. The routed
    API and the fast paths must answer them alike.
    """
    earn = {"order_id": "o1", "amount": "25.50"}
    lines = {
        "order_id": "o2",
        "amount": "0",
        "items": [{"item_id": "i1", "quantity": "2", "price": "12.25"}, {"item_id": "i2", "quantity": 1, "price": 3}],
    }
    return [
        ("GET", "/v1/customers/c1/loyalty", {"headers": w}),  # caches the write key, loads the program
        ("GET", "/v1/customers/c1/loyalty", {"headers": r}),  # caches the read key
        ("POST", EARN, {"json": earn, "headers": {**w, "Idempotency-Key": "k1"}}),
        ("POST", EARN, {"json": earn, "headers": {**w, "Idempotency-Key": "k1"}}),  # replay
        ("POST", EARN, {"json": {**earn, "amount": "26"}, "headers": {**w, "Idempotency-Key": "k1"}}),  # 409 conflict
        ("POST", EARN, {"json": earn, "headers": {**w, "Idempotency-Key": "k2"}}),  # 409 duplicate order
        ("POST", EARN, {"json": lines, "headers": {**w, "Idempotency-Key": "k3"}}),
        ("POST", EARN, {"json": {"order_id": "o3", "amount": 12.5}, "headers": {**w, "Idempotency-Key": "k4"}}),
        (
            "POST",
            "/v1/customers/c%C3%A9/loyalty/earn",
            {"json": {"order_id": "ö", "amount": 7}, "headers": {**w, "Idempotency-Key": "k-u"}},
        ),
        ("POST", EARN, {"json": earn, "headers": w}),  # 422: no Idempotency-Key
        ("POST", EARN, {"json": earn, "headers": {**w, "Idempotency-Key": "x" * 201}}),  # 422: key too long
        ("POST", EARN, {"json": {**earn, "amount": "-1"}, "headers": {**w, "Idempotency-Key": "k5"}}),  # 422
        (
            "POST",
            EARN,
            {"json": {**earn, "order_id": "o9", "extra": 1}, "headers": {**w, "Idempotency-Key": "k6"}},
        ),  # 422
        ("POST", EARN, {"json": [earn], "headers": {**w, "Idempotency-Key": "k7"}}),  # 422: not an object
        (
            "POST",
            EARN,
            {
                "content": b'{"order_id": "o9", ',
                "headers": {**w, "Idempotency-Key": "k8", "Content-Type": "application/json"},
            },
        ),  # 422: bad JSON
        (
            "POST",
            EARN,
            {
                "content": b'{"order_id":"o9","amount":"1"}',
                "headers": {**w, "Idempotency-Key": "k9", "Content-Type": "text/plain"},
            },
        ),
        ("POST", EARN, {"json": {"order_id": "o9", "amount": NaN_TEXT}, "headers": {**w, "Idempotency-Key": "k10"}}),
        (
            "POST",
            EARN + "?dry=1",
            {"json": {"order_id": "o9", "amount": "1"}, "headers": {**w, "Idempotency-Key": "k11"}},
        ),
        (
            "POST",
            f"/v1/customers/{'c' * 129}/loyalty/earn",
            {"json": {"order_id": "o9", "amount": "1"}, "headers": {**w, "Idempotency-Key": "k12"}},
        ),
        ("POST", EARN, {"json": {"order_id": "o9", "amount": "1"}, "headers": {"Idempotency-Key": "k13"}}),  # 401
        (
            "POST",
            EARN,
            {
                "json": {"order_id": "o9", "amount": "1"},
                "headers": {"Authorization": "Bearer ck_nope_secret", "Idempotency-Key": "k14"},
            },
        ),  # 401
        ("POST", EARN, {"json": {"order_id": "o9", "amount": "1"}, "headers": {**r, "Idempotency-Key": "k15"}}),  # 403
        (
            "POST",
            REVERSE,
            {"json": {"order_id": "nope"}, "headers": {**w, "Idempotency-Key": "v1"}},
        ),  # 404 unknown order
        (
            "POST",
            REVERSE,
            {
                "json": {"order_id": "o2", "items": [{"item_id": "i1", "quantity": 1, "price": "12.25"}]},
                "headers": {**w, "Idempotency-Key": "v2"},
            },
        ),
        ("POST", REVERSE, {"json": {"order_id": "o1"}, "headers": {**w, "Idempotency-Key": "v3"}}),
        ("POST", REVERSE, {"json": {"order_id": "o1"}, "headers": {**w, "Idempotency-Key": "v3"}}),  # replay
        ("POST", REVERSE, {"json": {"order_id": "o1", "items": None}, "headers": {**w, "Idempotency-Key": "v4"}}),
        (
            "POST",
            "/v1/customers/c1/loyalty/redeem",
            {"json": {"reward_id": "coffee"}, "headers": {**w, "Idempotency-Key": "r1"}},
        ),
        ("GET", "/v1/customers/c1/loyalty", {"headers": r}),
    ]


# requests of loyalty_requests (by index) the fast path must answer itself; every other one must reach the route
FAST = {2, 3, 4, 5, 6, 7, 8, 22, 23, 24, 25, 26}
