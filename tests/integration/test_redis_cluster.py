"""Centric on a real Redis Cluster (3 masters, 3 replicas on loopback): run alone with ``pytest -m cluster``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.store.connection import is_cluster_url, sync_client
from recsys.store.keys import Keys
from tests.redis_cluster import LocalRedisCluster, cluster_from_env

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "loyalty.toml"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.xdist_group("redis-cluster"),
    pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) not installed"),
]


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis+cluster://`` url: CENTRIC_TEST_REDIS_CLUSTER_URL, else a private 6-node cluster for this module."""
    configured = cluster_from_env()
    if configured:
        yield configured
        return
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_cluster_url_form_gives_a_cluster_client(cluster_url: str) -> None:
    assert is_cluster_url(cluster_url)
    client = sync_client(cluster_url)
    try:
        assert len(client.get_primaries()) == 3
    finally:
        client.close()


def test_a_bad_cluster_url_names_the_problem() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        sync_client("redis+cluster://127.0.0.1:notaport")


def test_ledger_earn_is_idempotent_on_the_cluster(cluster_url: str) -> None:
    client = sync_client(cluster_url)
    keys = Keys("tcluster")
    try:
        ledger = RedisLedger(client, keys, load_program(PROGRAM))
        ledger.init_stock()
        for customer in ("c1", "c2", "c3", "c4"):
            first = ledger.earn(customer, f"o-{customer}", Decimal("100"), [], NOW, f"k-{customer}")
            again = ledger.earn(customer, f"o-{customer}", Decimal("100"), [], NOW, f"k-{customer}")
            assert again["balance"] == first["balance"]
    finally:
        for key in client.scan_iter(match=keys.pattern()):
            client.delete(key)
        client.close()
