"""Offers and audiences against a real Redis: events update counters atomically and change what is served."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
import redis.asyncio as aioredis

from recsys import clock
from recsys.nba.decision import build_frame, decide
from recsys.nba.offers import catalog_from_dict
from recsys.store.keys import Keys
from serving.services.offer_events import apply_offer_events
from serving.services.offers import campaign_audience, customer_offers
from tests.helpers.async_redis import with_client
from tests.helpers.nba import FakeOfferStore

# A fixed moment, and the clock frozen there: served offers and the events applied "now" see the same day and
# week, whatever the date or time of day the suite runs (a run crossing midnight used to split them).
NOW = dt.datetime(2028, 2, 29, 23, 59, 30, tzinfo=dt.UTC)
CATALOG = {
    "policy": {"max_per_channel": {"app": 2}, "cooldown_days": 14, "max_offers_per_customer": 3},
    "offer": [
        {"id": "big", "kind": "percent_discount", "channels": ["app"], "value": 50, "cost": 5, "max_redemptions": 2},
        {"id": "mid", "kind": "amount_discount", "channels": ["app", "email"], "value": 20, "cost": 2},
        {"id": "small", "kind": "content", "channels": ["app"], "value": 5},
    ],
}


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[dt.datetime]:
    with clock.frozen(NOW) as moment:
        yield moment


@pytest.fixture
def store() -> FakeOfferStore:
    catalog = catalog_from_dict(CATALOG)
    frame = build_frame(
        pl.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "p_alive": [0.9] * 40, "clv": [100.0] * 40})
    )
    return FakeOfferStore(decide(frame, catalog).decisions, [o.to_dict() for o in catalog.offers])


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run(loop: asyncio.AbstractEventLoop, redis_url: str, func: Any) -> Any:
    return loop.run_until_complete(with_client(redis_url, func))


def served(
    loop: Any, redis_url: str, keys: Keys, store: FakeOfferStore, customer: str, channel: str = "app"
) -> list[str]:
    answer = run(loop, redis_url, lambda r: customer_offers(r, keys, store, customer, channel=channel, k=3, now=NOW))
    return [o.offer_id for o in answer.offers]


def test_offers_are_ranked_and_capped_by_the_channel_contact_limit(
    loop: Any, redis_url: str, keys: Keys, store: FakeOfferStore
) -> None:
    assert served(loop, redis_url, keys, store, "c1") == ["big", "mid"]  # cap 2 on app
    assert served(loop, redis_url, keys, store, "c1", "email") == ["mid"]
    assert served(loop, redis_url, keys, store, "nobody") == []


def test_impressions_dismissals_and_redemptions_change_what_is_served(
    loop: Any, redis_url: str, keys: Keys, store: FakeOfferStore, redis_client: Any
) -> None:
    events = [{"type": "impression", "customer_id": "c2", "offer_id": "big", "channel": "app", "arm": "nba"}]
    run(loop, redis_url, lambda r: apply_offer_events(r, keys, events))
    assert served(loop, redis_url, keys, store, "c2") == ["big"]  # one impression left this period
    assert int(redis_client.hget(keys.nba_budget("big"), "impressions:nba")) == 1
    run(
        loop,
        redis_url,
        lambda r: apply_offer_events(r, keys, [{"type": "dismiss", "customer_id": "c3", "offer_id": "big"}]),
    )
    assert served(loop, redis_url, keys, store, "c3") == ["mid", "small"]
    run(
        loop,
        redis_url,
        lambda r: apply_offer_events(r, keys, [{"type": "redeem", "customer_id": "c4", "offer_id": "mid"}]),
    )
    assert served(loop, redis_url, keys, store, "c4", "email") == []
    assert int(redis_client.hget(keys.nba_budget("mid"), "redemptions")) == 1
    assert redis_client.ttl(keys.nba_contacts("c4")) > 0


def test_an_exhausted_offer_stops_being_served_at_once(
    loop: Any, redis_url: str, keys: Keys, store: FakeOfferStore
) -> None:
    assert "big" in served(loop, redis_url, keys, store, "c5")
    redeem = [{"type": "redeem", "customer_id": c, "offer_id": "big"} for c in ("c6", "c7")]
    run(loop, redis_url, lambda r: apply_offer_events(r, keys, redeem))
    assert "big" not in served(loop, redis_url, keys, store, "c5")
    assert "big" not in served(loop, redis_url, keys, store, "c8")


def test_concurrent_redemptions_are_all_counted(
    loop: Any, redis_url: str, keys: Keys, store: FakeOfferStore, redis_client: Any
) -> None:
    async def burst(client: aioredis.Redis) -> None:
        await asyncio.gather(
            *(
                apply_offer_events(client, keys, [{"type": "redeem", "customer_id": f"c{i}", "offer_id": "mid"}])
                for i in range(30)
            )
        )

    run(loop, redis_url, burst)
    assert int(redis_client.hget(keys.nba_budget("mid"), "redemptions")) == 30


def test_http_audience_matches_per_customer_offers(
    loop: Any, redis_url: str, keys: Keys, store: FakeOfferStore
) -> None:
    audience = run(loop, redis_url, lambda r: campaign_audience(store, "mid", budget=3.0, channel="email"))
    assert 0 < audience.expected_redemptions <= 3.0
    for member in audience.customers[:5]:
        answer = run(
            loop,
            redis_url,
            lambda r, c=member.customer_id: customer_offers(r, keys, store, c, channel="email", k=3, now=NOW),
        )
        offer = next(o for o in answer.offers if o.offer_id == "mid")
        assert offer.expected_value == pytest.approx(member.expected_value)
        assert offer.p_accept == pytest.approx(member.p_accept)


def test_published_snapshot_serves_offers_and_audiences_consistently(loop: Any, redis_url: str, keys: Keys) -> None:
    store_mod = pytest.importorskip("recsys.store.memory")
    base = pytest.importorskip("recsys.store.base")
    catalog = catalog_from_dict(CATALOG)
    frame = build_frame(pl.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "p_alive": [0.9] * 40}))
    decisions = decide(frame, catalog).decisions
    store = store_mod.MemoryStore()
    store.publish(base.SnapshotData(decisions=decisions, offers=[o.to_dict() for o in catalog.offers], experiments=[]))
    audience = run(loop, redis_url, lambda r: campaign_audience(store, "mid", budget=1e6, channel="email"))
    assert {m.customer_id for m in audience.customers} == set(
        decisions.filter(pl.col("offer_id") == "mid").get_column("customer_id")
    )
    member = audience.customers[0]
    answer = run(
        loop, redis_url, lambda r: customer_offers(r, keys, store, member.customer_id, channel="email", k=3, now=NOW)
    )
    assert answer.version and [o.offer_id for o in answer.offers] == ["mid"]
    assert answer.offers[0].p_accept == pytest.approx(member.p_accept)
