"""The dashboard tests' service: ``centric demo`` on 120 customers of The Complete Journey, published to real Redis.

Built once per test process (about 8 s) in a namespace of its own; the UI tests share it (they are one xdist
group, so one worker builds it) and only add to it (grants, sessions), never reset it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import redis

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from serving.auth import create_api_key
from training.jobs.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "examples" / "loyalty.toml"
OFFERS = ROOT / "examples" / "offers.toml"


@dataclass(frozen=True)
class UiDemo:
    """Where the demo lives and the keys to sign in with."""

    redis_url: str
    keys: Keys
    artifacts: Path
    admin_key: str
    read_key: str
    customer_id: str  # a customer with recommendations and offers on the app channel

    def settings(self) -> Settings:
        """Settings of a service on this demo."""
        return Settings(redis_url=self.redis_url, env=self.keys.env, loyalty_program=PROGRAM)


def build_ui_demo(redis_url: str, directory: Path) -> UiDemo:
    """Run the demo on 120 customers into a new namespace; return how to reach it."""
    keys = Keys(env=f"ui{uuid.uuid4().hex[:10]}")
    client = redis.Redis.from_url(redis_url)
    try:
        result = run_demo(client, keys, directory, loyalty_program=PROGRAM, offers_catalog=OFFERS, customers=120)
        read_key = create_api_key(client, keys, "read", name="ui-test-read")
    finally:
        client.close()
    decisions = pl.read_parquet(directory / "decisions.parquet").filter(pl.col("channel") == "app")
    customer = str(decisions.get_column("customer_id").sort().to_list()[0])
    assert result.api_key is not None
    return UiDemo(redis_url, keys, directory, result.api_key, read_key, customer)


def drop_ui_demo(demo: UiDemo) -> None:
    """Delete every key of the demo's namespace."""
    client = redis.Redis.from_url(demo.redis_url)
    try:
        batch = list(client.scan_iter(match=demo.keys.pattern(), count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    finally:
        client.close()


@contextlib.asynccontextmanager
async def ui_client(
    demo: UiDemo, base_url: str = "http://centric.test", **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an httpx client on a fresh app over the demo (lifespan running; redirects not followed); ``settings``
    override the demo's."""
    app = create_app(demo.settings().model_copy(update=settings), gc_tuning=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url) as client:
            yield client


async def sign_in(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    """Post the sign-in form; the client keeps the session cookie."""
    return await client.post("/ui/login", data={"api_key": api_key, "next": "/ui"})
