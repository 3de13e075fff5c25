"""Shared fixtures: a real Redis for the whole session, a fresh key namespace per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from recsys.store.connection import sync_client
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``slow`` tests unless CENTRIC_SLOW=1."""
    if os.environ.get("CENTRIC_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set CENTRIC_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when the data sets are not beside the checkout."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: CENTRIC_TEST_REDIS_URL if set, else a private redis-server for this test session."""
    configured = os.environ.get("CENTRIC_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-home"), appendfsync="everysec")
    server.start()
    try:
        yield server.url or ""
    finally:
        server.stop()


@pytest.fixture
def keys(redis_url: str) -> Iterator[Keys]:
    """A key namespace unique to this test; its keys are deleted afterwards."""
    namespace = Keys(env=f"t{uuid.uuid4().hex[:12]}")
    yield namespace
    client = sync_client(redis_url)
    try:
        batch = list(client.scan_iter(match=namespace.pattern(), count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client on the session's Redis."""
    client = sync_client(redis_url)
    yield client
    client.close()
