"""One contract for both loyalty adapters: the sync ``RedisLedger`` (jobs, CLI) and the service (the API).

Both drive the same flows (``recsys.loyalty.flow``); every test here runs against each adapter and asserts what a
customer gets: the same results, the same refusals (with the same messages), the same stock and the same books.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis
import redis.asyncio as aioredis

from recsys.exceptions import (
    CentricError,
    DataError,
    IdempotencyConflict,
    InsufficientPoints,
    OutOfStock,
    RewardUnavailable,
    UnknownReward,
)
from recsys.loyalty.flow import LoyaltyFlow, Standing
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.ops import DuplicateOrder, UnknownOrder
from recsys.loyalty.program import Program, parse_program
from recsys.store.keys import Keys
from serving.schemas.loyalty import EarnCreate, OrderLine
from serving.services import loyalty as service

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "loyalty.toml"
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)


def _program() -> Program:
    """The example program without its dated campaign, plus a reward valid only in April 2025 and a scarce one."""
    raw = tomllib.loads(EXAMPLE.read_text())
    raw.get("earning", {}).pop("campaigns", None)
    raw["rewards"] += [
        {
            "id": "spring",
            "name": "Spring gift",
            "cost": 100,
            "stock": 10,
            "valid_from": datetime(2025, 4, 1, tzinfo=UTC),
            "valid_to": datetime(2025, 4, 30, tzinfo=UTC),
        },
        {"id": "scarce", "name": "Last one", "cost": 100, "stock": 1},
    ]
    return parse_program(raw, "contract.toml")


class Adapter(Protocol):
    """What the contract drives; results are ``{"entry", "balance", "debt", "tier" (name), "replayed"}``."""

    name: str

    def earn(self, customer_id: str, order_id: str, amount: str, idem: str, now: datetime = NOW) -> dict: ...
    def redeem(self, customer_id: str, reward_id: str, quantity: int, idem: str, now: datetime = NOW) -> dict: ...
    def reverse(self, customer_id: str, order_id: str, returned: str | None, idem: str) -> dict: ...
    def grant(self, grants: list[tuple[str, int]], idem: str) -> list[dict]: ...
    def standing(self, customer_id: str, now: datetime = NOW) -> dict: ...
    def init_stock(self) -> None: ...


class SyncAdapter:
    """``RedisLedger`` on a redis-py client."""

    name = "sync"

    def __init__(self, client: redis.Redis, keys: Keys, program: Program) -> None:
        self.ledger = RedisLedger(client, keys, program)
        self.init_stock()
        self.flow = LoyaltyFlow(program, keys)

    def init_stock(self) -> None:
        self.ledger.init_stock()

    def _out(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**result, "tier": self.flow.tier_name(result["tier"])}

    def earn(self, customer_id: str, order_id: str, amount: str, idem: str, now: datetime = NOW) -> dict:
        return self._out(self.ledger.earn(customer_id, order_id, Decimal(amount), [], now, idem))

    def redeem(self, customer_id: str, reward_id: str, quantity: int, idem: str, now: datetime = NOW) -> dict:
        return self._out(self.ledger.redeem(customer_id, reward_id, quantity, now, idem))

    def reverse(self, customer_id: str, order_id: str, returned: str | None, idem: str) -> dict:
        amount = None if returned is None else Decimal(returned)
        return self._out(self.ledger.reverse(customer_id, order_id, amount, NOW, idem))

    def grant(self, grants: list[tuple[str, int]], idem: str) -> list[dict]:
        return [self._out(out) for _, out in self.ledger.grant_many(grants, "goodwill", idem, NOW)]

    def standing(self, customer_id: str, now: datetime = NOW) -> dict:
        return _standing(self.ledger.standing(customer_id, now))


class ServiceAdapter:
    """The service's functions (what the routes call) on a ``redis.asyncio`` client, one event loop per call."""

    name = "service"

    def __init__(self, redis_url: str, keys: Keys, program: Program) -> None:
        self.redis_url, self.keys, self.program = redis_url, keys, program
        self.init_stock()

    def init_stock(self) -> None:
        """What ``loyalty_of`` runs when the app first loads the program."""
        self._call(lambda svc: svc.drive(svc.flow.init_stock()))

    def _call(self, func: Callable[[service.LoyaltyService], Coroutine[Any, Any, Any]]) -> Any:
        async def body() -> Any:
            client = aioredis.from_url(self.redis_url)
            try:
                return await func(service.LoyaltyService(self.program, client, self.keys))
            finally:
                await client.aclose()

        return asyncio.run(body())

    @staticmethod
    def _out(public: Any) -> dict[str, Any]:
        return public.model_dump(exclude={"customer_id"})

    def earn(self, customer_id: str, order_id: str, amount: str, idem: str, now: datetime = NOW) -> dict:
        body = EarnCreate(order_id=order_id, amount=Decimal(amount))
        return self._out(self._call(lambda svc: service.earn(svc, customer_id, body, idem, now)))

    def redeem(self, customer_id: str, reward_id: str, quantity: int, idem: str, now: datetime = NOW) -> dict:
        return self._out(self._call(lambda svc: service.redeem(svc, customer_id, reward_id, quantity, idem, now)))

    def reverse(self, customer_id: str, order_id: str, returned: str | None, idem: str) -> dict:
        items = None if returned is None else [OrderLine(item_id="i", quantity=1, price=Decimal(returned))]
        return self._out(self._call(lambda svc: service.reverse(svc, customer_id, order_id, items, idem, NOW)))

    def grant(self, grants: list[tuple[str, int]], idem: str) -> list[dict]:
        return [self._out(p) for p in self._call(lambda svc: service.grant(svc, grants, "goodwill", idem, NOW))]

    def standing(self, customer_id: str, now: datetime = NOW) -> dict:
        public = self._call(lambda svc: service.account(svc, customer_id, now))
        return public.model_dump()


def _standing(view: Standing) -> dict[str, Any]:
    """A ``Standing`` as a dict, to compare with the API's ``LoyaltyPublic`` (the same fields)."""
    return dataclasses.asdict(view)


@pytest.fixture(params=["sync", "service"])
def adapter(request: pytest.FixtureRequest, redis_url: str, redis_client: redis.Redis, keys: Keys) -> Iterator[Adapter]:
    program = _program()
    yield (
        SyncAdapter(redis_client, keys, program)
        if request.param == "sync"
        else ServiceAdapter(redis_url, keys, program)
    )


def _stock(redis_client: redis.Redis, keys: Keys, reward_id: str) -> int:
    return int(redis_client.hget(keys.loyalty_stock(reward_id), "stock"))


def _refusal(call: Callable[[], Any]) -> tuple[type[CentricError], str]:
    with pytest.raises(CentricError) as info:
        call()
    return type(info.value), str(info.value)


# --- earning and idempotency ---------------------------------------------------------------------------------------


def test_earn_twice_with_the_same_key_earns_once(adapter: Adapter) -> None:
    first = adapter.earn("c1", "o1", "100", "e1")
    again = adapter.earn("c1", "o1", "100", "e1")
    assert first["balance"] == 200 and not first["replayed"]  # 100 + first-purchase bonus
    assert again == {**first, "replayed": True}


def test_a_key_reused_for_another_request_is_a_conflict(adapter: Adapter) -> None:
    adapter.earn("c1", "o1", "100", "e1")
    with pytest.raises(IdempotencyConflict):
        adapter.earn("c1", "o2", "50", "e1")


def test_an_order_earns_under_one_key_only(adapter: Adapter) -> None:
    adapter.earn("c1", "o1", "100", "e1")
    with pytest.raises(DuplicateOrder):
        adapter.earn("c1", "o1", "100", "e2")


# --- redeem: tier, validity window, stock --------------------------------------------------------------------------


def test_a_tier_restricted_reward_is_refused_to_a_lower_tier(
    adapter: Adapter, redis_client: redis.Redis, keys: Keys
) -> None:
    """A Bronze customer with enough points may not redeem the Gold-only lounge pass: nothing is debited, no stock
    is taken, and a later attempt with the same key is refused again (the refusal is not recorded as a debit)."""
    adapter.grant([("c1", 6000)], "g1")
    assert adapter.standing("c1")["tier"] == "Bronze"  # grants do not qualify for tiers
    kind, message = _refusal(lambda: adapter.redeem("c1", "gold-lounge", 1, "r1"))
    assert kind is RewardUnavailable
    assert message == (
        "reward 'gold-lounge' is not available to tier 'Bronze' now (tiers ['Gold'], "
        "valid 2020-01-01 00:00:00+00:00 to None)"
    )
    assert _stock(redis_client, keys, "gold-lounge") == 500
    assert adapter.standing("c1")["balance"] == 6000
    assert _refusal(lambda: adapter.redeem("c1", "gold-lounge", 1, "r1"))[0] is RewardUnavailable


def test_a_gold_customer_redeems_the_gold_reward(adapter: Adapter, redis_client: redis.Redis, keys: Keys) -> None:
    adapter.earn("c1", "o1", "5000", "e1")
    adapter.earn("c1", "o2", "5000", "e2")  # 10,100 earned in the window: Gold
    out = adapter.redeem("c1", "gold-lounge", 1, "r1")
    assert out["tier"] == "Gold" and out["entry"]["amount"] == -5000
    assert _stock(redis_client, keys, "gold-lounge") == 499


def test_a_reward_outside_its_validity_window_is_refused(adapter: Adapter) -> None:
    adapter.grant([("c1", 500)], "g1")
    assert _refusal(lambda: adapter.redeem("c1", "spring", 1, "r1"))[0] is RewardUnavailable  # March
    april = adapter.redeem("c1", "spring", 1, "r2", now=datetime(2025, 4, 2, tzinfo=UTC))
    assert april["balance"] == 400


def test_redeem_with_too_few_points_gives_the_stock_back(
    adapter: Adapter, redis_client: redis.Redis, keys: Keys
) -> None:
    adapter.grant([("c1", 100)], "g1")
    kind, message = _refusal(lambda: adapter.redeem("c1", "coffee", 1, "r1"))
    assert (kind, message) == (InsufficientPoints, "customer 'c1' has 100 points; 300 needed")
    assert _stock(redis_client, keys, "coffee") == 100_000
    adapter.grant([("c1", 1000)], "g2")
    # the key's refusal is recorded: its retry is refused again even though the points are there now
    assert _refusal(lambda: adapter.redeem("c1", "coffee", 1, "r1"))[0] is InsufficientPoints


def test_redeem_twice_with_the_same_key_takes_stock_and_points_once(
    adapter: Adapter, redis_client: redis.Redis, keys: Keys
) -> None:
    adapter.grant([("c1", 1000)], "g1")
    first = adapter.redeem("c1", "coffee", 2, "r1")
    again = adapter.redeem("c1", "coffee", 2, "r1")
    assert again == {**first, "replayed": True}
    assert first["balance"] == 400
    assert _stock(redis_client, keys, "coffee") == 100_000 - 2


def test_the_last_item_of_stock_goes_to_one_customer(adapter: Adapter, redis_client: redis.Redis, keys: Keys) -> None:
    adapter.grant([("c1", 500), ("c2", 500)], "g1")
    adapter.redeem("c1", "scarce", 1, "r1")
    assert _refusal(lambda: adapter.redeem("c2", "scarce", 1, "r1")) == (OutOfStock, "reward 'scarce' is out of stock")
    assert _stock(redis_client, keys, "scarce") == 0


def test_creating_the_stock_again_keeps_what_was_redeemed(
    adapter: Adapter, redis_client: redis.Redis, keys: Keys
) -> None:
    adapter.grant([("c1", 1000)], "g1")
    adapter.redeem("c1", "coffee", 2, "r1")
    adapter.init_stock()  # a restart, or a second worker loading the program
    assert _stock(redis_client, keys, "coffee") == 100_000 - 2


def test_an_unknown_reward_is_refused(adapter: Adapter) -> None:
    assert _refusal(lambda: adapter.redeem("c1", "yacht", 1, "r1"))[0] is UnknownReward


# --- reversal and debt ------------------------------------------------------------------------------------------------


def test_points_reversed_after_they_were_spent_become_debt_paid_by_the_next_earn(adapter: Adapter) -> None:
    adapter.earn("c1", "o1", "400", "e1")  # 400 + 100 bonus
    adapter.redeem("c1", "coffee", 1, "r1")  # 200 left
    out = adapter.reverse("c1", "o1", None, "v1")
    assert (out["balance"], out["debt"], out["entry"]["shortfall"]) == (0, 300, 300)
    later = adapter.earn("c1", "o2", "500", "e2")
    assert (later["balance"], later["debt"], later["entry"]["debt_paid"]) == (200, 0, 300)
    assert _refusal(lambda: adapter.reverse("c1", "nope", None, "v2"))[0] is UnknownOrder


def test_a_partial_return_reverses_its_share(adapter: Adapter) -> None:
    adapter.earn("c1", "o1", "100", "e1")
    assert adapter.reverse("c1", "o1", "25", "v1")["entry"]["points"] == 50  # a quarter of 200


# --- bulk grants and the account view ------------------------------------------------------------------------------


def test_a_bulk_grant_naming_a_customer_twice_applies_nothing(adapter: Adapter) -> None:
    with pytest.raises(DataError, match="c1"):
        adapter.grant([("c1", 10), ("c2", 5), ("c1", 20)], "g1")
    assert adapter.standing("c1")["balance"] == adapter.standing("c2")["balance"] == 0
    assert [r["balance"] for r in adapter.grant([("c1", 10), ("c2", 5)], "g2")] == [10, 5]


def test_the_account_view(adapter: Adapter) -> None:
    adapter.earn("c1", "o1", "1900", "e1")  # 2000 earned: Silver
    view = adapter.standing("c1", NOW + timedelta(days=340))  # the lot expires within 30 days
    assert {k: view[k] for k in ("customer_id", "balance", "tier", "next_tier", "expiring_30d")} == {
        "customer_id": "c1",
        "balance": 2000,
        "tier": "Silver",
        "next_tier": "Gold",
        "expiring_30d": 2000,
    }
    assert [r["reward_id"] for r in view["rewards"]] == ["coffee", "voucher-10", "scarce"]
    assert adapter.standing("c1", NOW + timedelta(days=400))["balance"] == 0  # past expiry, before any write


def test_both_adapters_answer_the_same(redis_url: str, redis_client: redis.Redis) -> None:
    """The same sequence on two fresh namespaces, one per adapter: equal results and equal refusals."""
    outcomes = []
    for make in (SyncAdapter, ServiceAdapter):
        keys = Keys(f"contract-{make.name}-{id(outcomes)}")
        target = redis_client if make is SyncAdapter else redis_url
        a = make(target, keys, _program())  # type: ignore[arg-type]
        steps: list[Callable[[], Any]] = [
            lambda a=a: a.earn("c1", "o1", "2500", "e1"),
            lambda a=a: a.redeem("c1", "gold-lounge", 1, "r1"),
            lambda a=a: a.redeem("c1", "coffee", 3, "r2"),
            lambda a=a: a.redeem("c1", "coffee", 3, "r2"),
            lambda a=a: a.redeem("c1", "voucher-10", 3, "r3"),
            lambda a=a: a.reverse("c1", "o1", "1000", "v1"),
            lambda a=a: a.standing("c1"),
        ]
        seen = []
        for step in steps:
            try:
                seen.append(step())
            except CentricError as exc:
                seen.append((type(exc).__name__, str(exc)))
        outcomes.append(seen)
        for key in redis_client.scan_iter(match=keys.pattern()):
            redis_client.delete(key)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1][0] == "RewardUnavailable"
