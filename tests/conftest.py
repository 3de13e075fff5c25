"""Shared fixtures: a real Redis for the whole session, a fresh key namespace per test."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from recsys.store.connection import sync_client
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys

# Test apps do only what each test asks of Redis: no background warm-up of the dashboard's figures (its own tests
# turn it on where they check it).
os.environ.setdefault("CENTRIC_DASHBOARD_WARMUP", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TIMETRAVEL = Path(__file__).resolve().parent / "timetravel"
# Test files whose behaviour involves "now" (points expiry, tiers, campaigns, contact-policy windows, offer
# validity, event times): `make test` also runs them at fixed moments (leap-day midnight, year end).
CLOCK_SENSITIVE = ("loyalty", "nba", "offer", "event", "campaign", "clock", "experiment", "report")


def _travel_if_asked() -> str | None:
    """Honour ``CENTRIC_TEST_NOW`` (``make test TODAY=...``) in this process and in every process it starts."""
    if not os.environ.get("CENTRIC_TEST_NOW"):
        return None
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(TIMETRAVEL) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(TIMETRAVEL), *paths])
    loaded = sys.modules.get("sitecustomize")
    if getattr(loaded, "__file__", None) != str(TIMETRAVEL / "sitecustomize.py"):
        # pytest was started without tests/timetravel on PYTHONPATH: travel now (children travel at start-up)
        spec = importlib.util.spec_from_file_location("centric_timetravel", TIMETRAVEL / "sitecustomize.py")
        assert spec and spec.loader
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return os.environ["CENTRIC_TEST_NOW"]


_TRAVELLED_TO = _travel_if_asked()


def pytest_report_header(config: pytest.Config) -> str:
    from recsys.clock import utcnow

    moved = f" (moved: CENTRIC_TEST_NOW={_TRAVELLED_TO})" if _TRAVELLED_TO else ""
    return f"clock: {utcnow().isoformat(timespec='seconds')}{moved}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark clock-sensitive tests ``clock``; skip ``slow`` tests unless CENTRIC_SLOW=1."""
    for item in items:
        if any(word in item.path.name for word in CLOCK_SENSITIVE):
            item.add_marker(pytest.mark.clock)
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
