"""One contract for every snapshot store: the Redis store and the in-memory fake must answer alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from recsys.exceptions import NoActiveSnapshot, NotFound
from recsys.store.base import OfferDecision, SnapshotData
from recsys.store.connection import async_client, sync_client
from recsys.store.keys import Keys
from recsys.store.memory import MemoryStore
from recsys.store.redis_reader import RedisSnapshotReader
from recsys.store.redis_store import RedisSnapshotStore
from serving.hotpath.redis_mux import MuxRedis


@dataclass
class StoreUnderTest:
    """A publisher plus a way to run async code against a reader of the same store."""

    publisher: Any
    make_reader: Callable[[], Any]
    close_reader: Callable[[Any], Awaitable[None]]

    def read(self, body: Callable[[Any], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            reader = self.make_reader()
            try:
                return await body(reader)
            finally:
                await self.close_reader(reader)

        return asyncio.run(main())


@pytest.fixture(params=["memory", "redis", "redis_mux"])
def store(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    if request.param == "memory":
        fake = MemoryStore()

        async def noop(_reader: Any) -> None:
            return None

        yield StoreUnderTest(fake, lambda: fake, noop)
        return
    url = request.getfixturevalue("redis_url")
    keys: Keys = request.getfixturevalue("keys")
    client = sync_client(url)

    def make_reader() -> RedisSnapshotReader:
        client = async_client(url)
        mux = MuxRedis.for_client(client) if request.param == "redis_mux" else None
        assert mux is not None or request.param == "redis"
        return RedisSnapshotReader(client, keys, pointer_ttl_s=0.0, mux=mux)

    async def close(reader: RedisSnapshotReader) -> None:
        if reader.mux is not None:
            await reader.mux.aclose()  # type: ignore[attr-defined]
        await reader.client.aclose()

    yield StoreUnderTest(RedisSnapshotStore(client, keys), make_reader, close)
    client.close()


def snapshot(tag: str = "v1") -> SnapshotData:
    """A small snapshot; ``tag`` changes the first customer's top item so versions can be told apart."""
    top = "milk" if tag == "v1" else "bread"
    return SnapshotData(
        recommendations=pl.DataFrame(
            {
                "customer_id": ["c1", "c1", "c1", "c2"],
                "item_id": [top, "eggs", "tea", "eggs"],
                "rank": [1, 2, 3, 1],
                "score": [0.9, 0.5, 0.25, 0.7],
                "source": ["personalized", "personalized", "buy_again", "personalized"],
                "reason": [
                    "similar customers bought it",
                    "similar customers bought it",
                    "you buy it regularly",
                    "similar customers bought it",
                ],
            }
        ),
        similar_items=pl.DataFrame(
            {"item_id": ["milk", "milk"], "similar_item_id": ["eggs", "tea"], "rank": [1, 2], "score": [0.8, 0.4]}
        ),
        fallbacks=pl.DataFrame(
            {
                "list": ["popular", "popular", "category:dairy"],
                "item_id": ["tea", "milk", "milk"],
                "rank": [1, 2, 1],
                "score": [10.0, 9.0, 3.0],
            }
        ),
        items=pl.DataFrame(
            {
                "item_id": ["milk", "eggs", "tea", "bread"],
                "name": ["Milk", "Eggs", "Tea", "Bread"],
                "category": ["dairy", "dairy", "drinks", "bakery"],
                "price": [1.0, 2.5, 3.0, 1.5],
                "in_stock": [True, True, False, True],
                "repeat_category": [True, False, False, True],
            }
        ),
        profiles=pl.DataFrame(
            {
                "customer_id": ["c1", "c2"],
                "segment": ["champions", "new_customers"],
                "lifecycle": ["active", "new"],
                "clv": [120.5, 8.25],
                "p_alive": [0.95, 0.5],
                "orders": [12, 1],
                "top_categories": [["dairy", "drinks"], ["dairy"]],
            }
        ),
        segment_top_items=pl.DataFrame({"segment": ["champions"], "item_id": ["bread"], "rank": [1], "score": [4.0]}),
        decisions=pl.DataFrame(
            {
                "customer_id": ["c1", "c2"],
                "channel": ["app", "email"],
                "offer_id": ["o1", "o1"],
                "rank": [1, 1],
                "expected_value": [2.5, 1.0],
                "p_accept": [0.3, 0.1],
                "reason": ["likes dairy", "new customer"],
                "arm": ["treatment", "control"],
            }
        ),
        offers=[{"id": "o1", "name": "Dairy 10% off"}],
    )


def test_reads_before_any_publish_say_no_active_snapshot(store: StoreUnderTest) -> None:
    assert store.publisher.active_version() is None
    with pytest.raises(NoActiveSnapshot):
        store.read(lambda r: r.version())


def test_published_recommendations_come_back_in_rank_order_with_external_ids(store: StoreUnderTest) -> None:
    report = store.publisher.publish(snapshot())
    ranked, recent = store.read(lambda r: r.recommendations("c1"))
    assert ranked.version == report.version == store.publisher.active_version()
    assert [i.item_id for i in ranked.items] == ["milk", "eggs", "tea"]
    assert [i.score for i in ranked.items] == pytest.approx([0.9, 0.5, 0.25], abs=1e-3)
    assert [i.source for i in ranked.items] == ["personalized", "personalized", "buy_again"]
    assert ranked.items[2].reason == "you buy it regularly"
    assert recent == {}
    assert report.counts["customers"] == 2 and report.counts["recommendations"] == 4


def test_unknown_customer_and_item_read_as_none(store: StoreUnderTest) -> None:
    store.publisher.publish(snapshot())
    assert store.read(lambda r: r.recommendations("nobody"))[0] is None
    assert store.read(lambda r: r.similar("nothing")) is None
    assert store.read(lambda r: r.profile("nobody")) is None
    assert store.read(lambda r: r.fallback("no-such-list")) is None


def test_similar_items_fallbacks_and_segment_lists(store: StoreUnderTest) -> None:
    store.publisher.publish(snapshot())
    similar = store.read(lambda r: r.similar("milk"))
    assert [(i.item_id, i.source) for i in similar.items] == [("eggs", "similar"), ("tea", "similar")]
    names = store.read(lambda r: r.fallback_names())
    assert names == ["category:dairy", "popular", "segment:champions"]
    popular = store.read(lambda r: r.fallback("popular"))
    assert [i.item_id for i in popular.items] == ["tea", "milk"]
    assert all(i.source == "fallback" and i.reason for i in popular.items)
    assert store.read(lambda r: r.fallback("segment:champions")).items[0].item_id == "bread"


def test_profile_round_trips_segment_value_and_lists(store: StoreUnderTest) -> None:
    store.publisher.publish(snapshot())
    version, profile = store.read(lambda r: r.profile("c1"))
    assert version == store.publisher.active_version()
    assert profile["segment"] == "champions" and profile["lifecycle"] == "active"
    assert profile["clv"] == pytest.approx(120.5) and profile["p_alive"] == pytest.approx(0.95, abs=1e-6)
    assert profile["orders"] == 12 and profile["top_categories"] == ["dairy", "drinks"]


def test_item_table_carries_stock_category_and_repeat_flags(store: StoreUnderTest) -> None:
    store.publisher.publish(snapshot())
    table = store.read(lambda r: r.items())
    tea, milk = table.get("tea"), table.get("milk")
    assert tea is not None and milk is not None
    assert (tea.in_stock, tea.category, tea.repeat_category) == (False, "drinks", False)
    assert (milk.in_stock, milk.repeat_category, milk.name) == (True, True, "Milk")
    assert table.get("unknown") is None


def test_offer_decisions_catalog_and_audience(store: StoreUnderTest) -> None:
    store.publisher.publish(snapshot())
    offers = store.read(lambda r: r.get_customer_offers("c1"))
    assert offers.decisions == [
        OfferDecision(
            "c1", "o1", "app", rank=1, expected_value=2.5, p_accept=0.3, reason="likes dairy", arm="treatment"
        )
    ]
    assert store.read(lambda r: r.get_customer_offers("nobody")).decisions == []
    catalog = store.read(lambda r: r.get_offer_catalog())
    assert catalog.offers == [{"id": "o1", "name": "Dairy 10% off"}] and catalog.version == offers.version
    audience = store.read(lambda r: r.get_offer_audience("o1")).decisions
    assert sorted((d.customer_id, d.channel) for d in audience) == [("c1", "app"), ("c2", "email")]


def test_dashboard_document_and_experiments_come_back_with_the_version(store: StoreUnderTest) -> None:
    data = snapshot()
    data.dashboard = {"customers": 2, "lifecycle": [{"stage": "active", "customers": 1}]}
    data.experiments = [{"id": "e1", "arms": [{"name": "a", "weight": 1.0}]}]
    report = store.publisher.publish(data)
    found = store.read(lambda r: r.dashboard())
    assert found["version"] == report.version
    assert found["dashboard"] == data.dashboard and found["experiments"] == data.experiments
    assert found["created_at"].tzinfo is not None
    store.publisher.publish(snapshot("v2"))
    later = store.read(lambda r: r.dashboard())
    assert later["version"] != report.version and later["dashboard"] is None and later["experiments"] is None


def test_recorded_purchases_are_returned_with_the_customer_list(store: StoreUnderTest) -> None:
    store.publisher.publish(snapshot())

    async def body(reader: Any) -> Any:
        await reader.record_purchases([("c1", "eggs", 1_700_000_000.0), ("c9", "tea", 1_700_000_001.0)])
        return await reader.recommendations("c1"), await reader.recommendations("c9")

    (ranked, recent), (absent, recent9) = store.read(body)
    assert recent == {"eggs": 1_700_000_000.0}
    assert absent is None and recent9 == {"tea": 1_700_000_001.0}


def test_new_version_becomes_active_and_rollback_returns_to_the_previous(store: StoreUnderTest) -> None:
    first = store.publisher.publish(snapshot("v1")).version
    second = store.publisher.publish(snapshot("v2")).version
    assert store.read(lambda r: r.recommendations("c1"))[0].items[0].item_id == "bread"
    assert store.publisher.rollback() == first
    assert store.publisher.active_version() == first
    assert store.read(lambda r: r.recommendations("c1"))[0].items[0].item_id == "milk"
    assert [v.version for v in store.publisher.versions()] == [second, first]
    store.publisher.activate(second)
    assert store.read(lambda r: r.version()) == second


def test_only_the_last_keep_versions_are_kept(store: StoreUnderTest) -> None:
    published = [store.publisher.publish(snapshot(), keep=2).version for _ in range(3)]
    kept = [v.version for v in store.publisher.versions()]
    assert kept == [published[2], published[1]]
    with pytest.raises(NotFound):
        store.publisher.activate(published[0])


def test_rollback_without_an_older_version_is_refused(store: StoreUnderTest) -> None:
    with pytest.raises(NotFound):
        store.publisher.rollback()
    store.publisher.publish(snapshot())
    with pytest.raises(NotFound):
        store.publisher.rollback()


def test_a_publish_that_fails_midway_leaves_the_previous_version_active(store: StoreUnderTest) -> None:
    first = store.publisher.publish(snapshot("v1")).version

    def explode(step: str, done: int, total: int) -> None:
        raise RuntimeError(f"killed during {step}")

    with pytest.raises(RuntimeError):
        store.publisher.publish(snapshot("v2"), progress=explode)
    assert store.publisher.active_version() == first
    assert [v.version for v in store.publisher.versions()] == [first]
    assert store.read(lambda r: r.recommendations("c1"))[0].items[0].item_id == "milk"
