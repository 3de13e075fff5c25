"""Live offer state: spend budgets, contact history under late events, retried event batches, offer-event input.

Each test pins a correctness bug found in the next-best-action review of 2026-11-30 (they failed on the code
reviewed); the ones about arbitration, eligibility, experiments and configuration moved to tests/unit/nba/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from recsys.exceptions import IdempotencyConflict, StoreUnavailable
from recsys.nba.offers import catalog_from_dict
from recsys.store.keys import Keys
from serving.services.events import record_events
from serving.services.offer_events import apply_offer_events
from serving.services.offers import customer_offers
from tests.helpers.async_redis import with_client
from tests.helpers.nba import FakeOfferStore

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def run(redis_url: str, func: Any) -> Any:
    return asyncio.run(with_client(redis_url, func))


def row(customer: str, offer: str, channel: str = "app", rank: int = 1) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "channel": channel,
        "offer_id": offer,
        "rank": rank,
        "expected_value": 1.0,
        "p_accept": 0.1,
        "reason": "r",
        "arm": "none",
    }


def served(
    redis_url: str, keys: Keys, store: FakeOfferStore, customer: str, channel: str = "app", now: dt.datetime = NOW
) -> list[str]:
    answer = run(redis_url, lambda r: customer_offers(r, keys, store, customer, channel=channel, k=3, now=now))
    return [o.offer_id for o in answer.offers]


# --- live budgets -------------------------------------------------------------------------------------------------


def test_max_spend_is_never_exceeded_by_the_next_redemption(redis_url: str, keys: Keys) -> None:
    """max_spend 10.00, cost 4.00: after 2 redemptions (8.00 spent) a third would spend 12.00 > 10.00, so the offer
    must no longer be served. ``is_exhausted`` only stops once spend >= max_spend, i.e. after the overrun."""
    catalog = catalog_from_dict(
        {
            "offer": [
                {
                    "id": "spendy",
                    "kind": "amount_discount",
                    "channels": ["app"],
                    "value": 20,
                    "cost": 4,
                    "max_spend": 10,
                    "max_per_customer": 5,
                },
            ]
        }
    )
    store = FakeOfferStore([row("c1", "spendy")], [o.to_dict() for o in catalog.offers])
    redeems = [
        {"type": "redeem", "customer_id": f"r{i}", "offer_id": "spendy", "timestamp": NOW - dt.timedelta(days=1)}
        for i in range(2)
    ]
    run(redis_url, lambda r: apply_offer_events(r, keys, redeems))
    assert served(redis_url, keys, store, "c1") == []


# --- contact state: out-of-order events ---------------------------------------------------------------------------


def test_a_late_older_dismissal_does_not_end_the_cooldown(redis_url: str, keys: Keys) -> None:
    """dis:<offer> must hold the *last* dismissal. A dismissal from 30 days ago delivered after today's one
    overwrites it (HSET, last write wins), so the offer comes back at once instead of after 14 days."""
    catalog = catalog_from_dict(
        {
            "policy": {"cooldown_days": 14},
            "offer": [
                {"id": "o", "kind": "content", "channels": ["app"], "value": 4},
            ],
        }
    )
    store = FakeOfferStore([row("c1", "o")], [o.to_dict() for o in catalog.offers])
    events = [
        {"type": "dismiss", "customer_id": "c1", "offer_id": "o", "timestamp": NOW - dt.timedelta(hours=1)},
        {
            "type": "dismiss",
            "customer_id": "c1",
            "offer_id": "o",
            "timestamp": NOW - dt.timedelta(days=30),
        },  # late delivery
    ]
    run(redis_url, lambda r: apply_offer_events(r, keys, events))
    assert served(redis_url, keys, store, "c1") == []


def test_a_late_older_redemption_does_not_end_the_suppression(redis_url: str, keys: Keys) -> None:
    """Same for red:<offer>: a redemption from 200 days ago arriving after yesterday's lifts the 90-day suppression."""
    catalog = catalog_from_dict(
        {
            "policy": {"suppress_days": 90},
            "offer": [
                {
                    "id": "o",
                    "kind": "amount_discount",
                    "channels": ["app"],
                    "value": 9,
                    "cost": 1,
                    "max_per_customer": 10,
                },
            ],
        }
    )
    store = FakeOfferStore([row("c1", "o")], [o.to_dict() for o in catalog.offers])
    first = [{"type": "redeem", "customer_id": "c1", "offer_id": "o", "timestamp": NOW - dt.timedelta(days=1)}]
    late = [{"type": "redeem", "customer_id": "c1", "offer_id": "o", "timestamp": NOW - dt.timedelta(days=200)}]
    run(redis_url, lambda r: apply_offer_events(r, keys, first))
    run(redis_url, lambda r: apply_offer_events(r, keys, late))
    assert served(redis_url, keys, store, "c1") == []


# --- idempotency: retry of a partly applied batch -------------------------------------------------------------------


class FlakyRedis:
    """Delegates to a real client; the ``fail_at``-th pipeline or script call fails with a connection error.

    Counted together: a pipeline (whose execute raises after queueing) and a direct command (each key's offer
    counters are one script call, sent with ``execute_command``).
    """

    def __init__(self, real: aioredis.Redis, fail_at: int) -> None:
        self.real, self.fail_at, self.count = real, fail_at, 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self.real.pipeline(*args, **kwargs)
        self.count += 1
        if self.count == self.fail_at:

            async def boom(*_a: Any, **_k: Any) -> Any:
                raise RedisConnectionError("connection reset (injected)")

            pipe.execute = boom
        return pipe

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        if self.count == self.fail_at:
            raise RedisConnectionError("connection reset (injected)")
        return await self.real.execute_command(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_retrying_a_batch_after_a_503_does_not_count_the_redemption_twice(
    redis_url: str, keys: Keys, redis_client: Any
) -> None:
    """POST /v1/events answers 503 "retry the batch" when an offer-event transaction fails after the stream write
    and the customer's contact hash committed (calls 2 and 3 of the first try; 1 reads the batch's progress).
    A retry with the same Idempotency-Key applies only the budget hash; before keys existed it applied everything
    again (redn 2 for one redemption, the event twice in the stream)."""
    store = FakeOfferStore([], [])
    batch = [{"type": "redeem", "customer_id": "c1", "offer_id": "o", "timestamp": NOW}]

    async def first_try(client: aioredis.Redis) -> None:
        with pytest.raises(StoreUnavailable):
            await record_events(FlakyRedis(client, fail_at=4), keys, store, [dict(e) for e in batch], "batch-1")

    run(redis_url, first_try)
    assert (
        redis_client.xlen(keys.events_stream()) == 1 and redis_client.hget(keys.nba_budget("o"), "redemptions") is None
    )
    run(redis_url, lambda r: record_events(r, keys, store, [dict(e) for e in batch], "batch-1"))  # the client's retry
    run(redis_url, lambda r: record_events(r, keys, store, [dict(e) for e in batch], "batch-1"))  # and once more
    assert int(redis_client.hget(keys.nba_budget("o"), "redemptions") or 0) == 1
    assert int(redis_client.hget(keys.nba_contacts("c1"), "redn:o") or 0) == 1
    assert redis_client.xlen(keys.events_stream()) == 1
    other = [{"type": "redeem", "customer_id": "c2", "offer_id": "o", "timestamp": NOW}]
    with pytest.raises(IdempotencyConflict):
        run(redis_url, lambda r: record_events(r, keys, store, other, "batch-1"))


# --- input that once slipped through ------------------------------------------------------------------------------


def test_offer_events_must_name_a_known_channel() -> None:
    """An impression on "App" was counted under a field no cap ever reads; offer events now take only known channels."""
    from pydantic import ValidationError

    from serving.schemas.events import EventCreate

    with pytest.raises(ValidationError, match="not an offer channel"):
        EventCreate(type="impression", customer_id="c1", offer_id="o", channel="App")
    assert EventCreate(type="impression", customer_id="c1", offer_id="o", channel="app").channel == "app"
    assert EventCreate(type="view", customer_id="c1", item_id="i", channel="pos").channel == "pos"  # not an offer event
