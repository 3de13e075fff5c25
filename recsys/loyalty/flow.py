"""The loyalty flow, written once: every decision of a ledger read or write, with no I/O of its own.

Each flow is a generator. It yields a :class:`Batch` (Redis commands to send in one round trip), receives the
replies, and finally returns its result or raises the domain error. Two adapters drive the same flows:
``recsys.loyalty.ledger.RedisLedger`` with :func:`drive` on a redis-py client (jobs, CLI, tests) and
``serving.services.loyalty`` with :func:`adrive` on the service's async client. So the rules are enforced here
and only here: the reward's tier and validity window, the creation of reward stock, the stock reservation and
its release, idempotent replay of a decided key, the customer index; balance, debt, expiry and tiers are the
ledger script's (``recsys/store/lua/ledger.lua``), and scripts are sent through ``recsys.store.scripts``.

Redeem touches two hash tags (customer and reward stock), which Redis Cluster cannot change in one script, so it
is two steps: reserve stock (idempotent per key, bound to the payload hash), then debit the customer; a debit the
ledger refuses releases the reservation (see ``recsys/loyalty/ledger.py`` for the whole argument).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from recsys.exceptions import CentricError, DuplicateGrantCustomer, RewardUnavailable
from recsys.loyalty import ops
from recsys.loyalty.earning import Line, months_window
from recsys.loyalty.program import Program
from recsys.store import scripts
from recsys.store.keys import Fields, Keys

T = TypeVar("T")
Command = tuple[Any, ...]


@dataclass(frozen=True)
class Batch:
    """Commands an adapter sends in one round trip, in order; it answers their replies in the same order.

    Every command besides a script call is safe to repeat (reads, ``SADD``): an adapter may resend the whole
    batch after loading a script the server did not know. ``shield``: the batch must complete even when the
    request that started it is cancelled (a stock release).
    """

    commands: tuple[Command, ...]
    shield: bool = False


Flow = Generator[Batch, list[Any], T]


class CustomerIndex:
    """The customers this process added to the ledger index (a set) less than ``ttl_s`` seconds ago.

    The index is append-only, so a customer seen recently is not added again: a write is then one script call
    instead of two commands. ``ttl_s`` 0 (jobs, CLI) adds on every write. A ledger created meanwhile (its first
    entry, after a data reset) is indexed at once; an index emptied by hand heals within ``ttl_s``.
    """

    def __init__(self, ttl_s: float = 0.0, max_size: int = 100_000) -> None:
        self.ttl_s, self.max_size = ttl_s, max_size
        self._seen: dict[str, float] = {}

    def due(self, customer_id: str) -> bool:
        """Return whether a write for ``customer_id`` must (re)add it to the index."""
        seen = self._seen.get(customer_id)
        return self.ttl_s <= 0 or seen is None or time.monotonic() - seen >= self.ttl_s

    def mark(self, customer_id: str) -> None:
        """Record that the index holds ``customer_id`` now."""
        if self.ttl_s > 0:
            if len(self._seen) >= self.max_size:
                self._seen.clear()
            self._seen[customer_id] = time.monotonic()


@dataclass(frozen=True)
class RewardStanding:
    """A reward the customer's tier may redeem now, with its stock left (the fields of the API's ``RewardPublic``)."""

    reward_id: str
    name: str
    cost: int
    stock: int
    affordable: bool


@dataclass(frozen=True)
class Standing:
    """Where a customer stands: balance (points past expiry excluded), tier and progress, rewards on offer.

    The fields of the API's ``LoyaltyPublic``, which the service validates from this record by attribute.
    """

    customer_id: str
    balance: int
    debt: int
    tier: str
    next_tier: str | None
    points_to_next_tier: int
    progress_pct: float
    earned_in_window: int
    expiring_30d: int
    rewards: list[RewardStanding]


@dataclass
class LoyaltyFlow:
    """The flows of one program on one key namespace; ``index`` remembers whom this process indexed."""

    program: Program
    keys: Keys
    index: CustomerIndex = field(default_factory=CustomerIndex)

    def tier_name(self, tier: int) -> str:
        """Return the name of tier number ``tier`` (the last tier when the program has fewer)."""
        return self.program.tier_at(tier).name

    # --- writes ----------------------------------------------------------------------------------------------
    def init_stock(self) -> Flow[None]:
        """Create each reward's stock counter from the program where it does not exist yet (never resets live stock)."""
        if self.program.rewards:
            yield Batch(
                tuple(
                    ("HSETNX", self.keys.loyalty_stock(r.id), Fields.STOCK, r.stock)
                    for r in self.program.rewards.values()
                )
            )

    def indexed(self, customer_ids: Iterable[str], calls: Iterable[ops.Call] = ()) -> Batch:
        """One round trip: add ``customer_ids`` to the ledger's customer index (a set), then run each ledger call.

        The replies are the ``SADD``'s, then each call's, in order.
        """
        index = ("SADD", self.keys.loyalty_customers(), *dict.fromkeys(customer_ids))
        return Batch((index, *(scripts.LEDGER.command(c.keys, c.args) for c in calls)))

    def step(self, call: ops.Call, customer_id: str, idem: str) -> Flow[dict[str, Any]]:
        """Run one ledger script call, adding the customer to the index when due, in one round trip.

        Returns ``{"entry", "balance", "debt", "tier", "replayed"}``; raises the domain error the script answered.
        """
        due = self.index.due(customer_id)
        if due:
            answer = (yield self.indexed([customer_id], [call]))[1]
            self.index.mark(customer_id)
        else:
            answer = (yield Batch((scripts.LEDGER.command(call.keys, call.args),)))[0]
        out = ops.parse(answer, customer_id, idem)
        if not due and not out["replayed"] and (out.get("entry") or {}).get("id") == f"{customer_id}:1":
            # this ledger's first entry although the customer was indexed: the data was reset meanwhile
            yield self.indexed([customer_id])
            self.index.mark(customer_id)
        return out

    def earn(
        self,
        customer_id: str,
        order_id: str,
        amount: Decimal,
        lines: Sequence[Line],
        now: datetime,
        idem: str,
        categories: Mapping[str, str] | None = None,
    ) -> Flow[dict[str, Any]]:
        """Earn points for an order. Raises ``IdempotencyConflict``/``DuplicateOrder``."""
        call = ops.earn_call(
            self.program, self.keys, customer_id, order_id, amount, lines, now, idem, categories=categories
        )
        return (yield from self.step(call, customer_id, idem))

    def redeem(self, customer_id: str, reward_id: str, quantity: int, now: datetime, idem: str) -> Flow[dict[str, Any]]:
        """Redeem a reward: check tier and validity, reserve stock, debit; release the stock if the debit is refused.

        A key already decided answers what the ledger recorded (the entry, a refusal or a conflict), even if the
        tier or the reward's validity changed since; its stock was settled then. Raises ``UnknownReward``,
        ``RewardUnavailable``, ``OutOfStock``, ``InsufficientPoints``, ``IdempotencyConflict``.
        """
        reward = ops.reward_of(self.program, reward_id)
        call = ops.redeem_call(self.program, self.keys, customer_id, reward_id, quantity, now, idem)
        raw, decided = yield Batch(
            (
                ("HGETALL", self.keys.loyalty_account(customer_id)),
                ("HEXISTS", self.keys.loyalty_idempotency(customer_id), idem),
            )
        )
        if decided:
            return (yield from self.step(call, customer_id, idem))
        tier = self.tier_name(ops.decode_account(raw)["tier"])
        if not reward.available(tier, now):
            raise RewardUnavailable(
                f"reward {reward_id!r} is not available to tier {tier!r} now (tiers {list(reward.tiers) or 'all'}, "
                f"valid {reward.valid_from} to {reward.valid_to})"
            )
        stock_key = [self.keys.loyalty_stock(reward_id)]
        reserve = ops.stock_args("reserve", customer_id, idem, reward_id, quantity)
        ops.check_stock((yield Batch((scripts.STOCK.command(stock_key, reserve),)))[0], reward_id, idem)
        try:
            return (yield from self.step(call, customer_id, idem))
        except CentricError:
            # a definite refusal (recorded under the key, so no retry can debit later): give the stock back. On a
            # lost connection or a cancelled request the debit may have run; the reservation stays for a retry.
            release = ops.stock_args("release", customer_id, idem, reward_id, quantity)
            yield Batch((scripts.STOCK.command(stock_key, release),), shield=True)
            raise

    def reverse(
        self, customer_id: str, order_id: str, returned: Decimal | None, now: datetime, idem: str
    ) -> Flow[dict[str, Any]]:
        """Reverse an order (or ``returned`` currency units of it). Raises ``UnknownOrder``, ``IdempotencyConflict``."""
        return (
            yield from self.step(
                ops.reverse_call(self.keys, customer_id, order_id, returned, now, idem), customer_id, idem
            )
        )

    def grant(
        self, customer_id: str, points: int, reason: str, now: datetime, idem: str, op: str = "grant"
    ) -> Flow[dict[str, Any]]:
        """Grant points (``op='adjust'`` allows negative, refused if it would overdraw)."""
        call = ops.grant_call(self.program, self.keys, customer_id, points, reason, now, idem, op)
        return (yield from self.step(call, customer_id, idem))

    def grant_many(
        self, grants: Sequence[tuple[str, int]], reason: str, idem: str, now: datetime
    ) -> Flow[list[tuple[str, dict[str, Any]]]]:
        """Grant points to many customers in one round trip; each grant is idempotent under ``<idem>:<customer>``.

        Returns ``[(customer_id, result)]`` in order. Raises ``DuplicateGrantCustomer`` (nothing applied) when a
        customer is listed twice, since the two lines would share one key; else the first domain error a grant answered.
        """
        if twice := ops.repeated_customers(cid for cid, _ in grants):
            raise DuplicateGrantCustomer(
                f"customers listed more than once in one grant: {twice[:10]}; send one line per customer"
            )
        calls = [
            (
                cid,
                ops.grant_call(self.program, self.keys, cid, pts, reason, now, f"{idem}:{cid}", source=f"grant:{idem}"),
            )
            for cid, pts in grants
        ]
        if not calls:
            return []
        replies = yield self.indexed((cid for cid, _ in calls), (c for _, c in calls))
        for cid, _ in calls:
            self.index.mark(cid)
        return [(cid, ops.parse(a, cid, f"{idem}:{cid}")) for (cid, _), a in zip(calls, replies[1:], strict=True)]

    def expire(self, customer_id: str, now: datetime, review_tier: bool = False) -> Flow[dict[str, Any]]:
        """Expire the customer's lots due at ``now`` (and review the tier at period end).

        Returns ``{"expired", "balance", "tier"}``.
        """
        call = ops.expire_call(self.keys, customer_id, now, self.program if review_tier else None)
        return (yield from self.step(call, customer_id, ""))

    # --- reads -------------------------------------------------------------------------------------------------
    def standing(self, customer_id: str, now: datetime) -> Flow[Standing]:
        """Return the customer's balance, tier, progress to the next tier, points expiring within 30 days and the
        rewards their tier may redeem now (in stock)."""
        program, keys = self.program, self.keys
        rewards = list(program.rewards.values())
        raw, *stocks = yield Batch(
            (
                ("HGETALL", keys.loyalty_account(customer_id)),
                *(("HGET", keys.loyalty_stock(r.id), Fields.STOCK) for r in rewards),
            )
        )
        acct = ops.decode_account(raw)
        idx = program.tier_number(acct["tier"])
        tier = program.tiers[idx]
        earned = sum(acct["earned"].get(m, 0) for m in months_window(now, program.window_months))
        nxt = program.tiers[idx + 1] if idx + 1 < len(program.tiers) else None
        to_next = max(nxt.threshold - earned, 0) if nxt else 0
        pct = (
            100.0
            if nxt is None
            else round(min(100.0, 100.0 * max(earned - tier.threshold, 0) / (nxt.threshold - tier.threshold)), 1)
        )
        expiring = ops.expiring_points(acct, now, 30)
        balance = ops.live_balance(acct, now)
        offered = [
            RewardStanding(r.id, r.name, r.cost, int(s or 0), balance >= r.cost)
            for r, s in zip(rewards, stocks, strict=True)
            if r.available(tier.name, now) and int(s or 0) > 0
        ]
        return Standing(
            customer_id=customer_id,
            balance=balance,
            debt=acct["debt"],
            tier=tier.name,
            next_tier=nxt.name if nxt else None,
            points_to_next_tier=to_next,
            progress_pct=pct,
            earned_in_window=earned,
            expiring_30d=expiring,
            rewards=offered,
        )


class _Run(Generic[T]):
    """One flow being driven: what both drivers share (resume with replies or an error, catch the result)."""

    def __init__(self, flow: Flow[T]) -> None:
        self.flow = flow
        self.replies: list[Any] | None = None
        self.error: Exception | None = None
        self.result: T

    def next_batch(self) -> Batch | None:
        """Resume the flow with the last replies (or raise the last error in it); None once it has returned."""
        try:
            if self.error is not None:
                return self.flow.throw(self.error)
            return self.flow.send(self.replies)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            return None

    def answer(self, replies: list[Any] | None, error: Exception | None = None) -> None:
        """Record what the batch got: its replies, or the error its sending raised (handed to the flow next)."""
        self.replies, self.error = replies, error


def drive(send: Callable[[Batch], list[Any]], flow: Flow[T]) -> T:
    """Run ``flow`` to its end, sending each batch with ``send``; return its result (or raise its error).

    An error from ``send`` is raised inside the flow, which may act on it (a redeem releases nothing then).
    """
    run = _Run(flow)
    while (batch := run.next_batch()) is not None:
        try:
            run.answer(send(batch))
        except Exception as exc:  # handed to the flow, which re-raises what it does not handle
            run.answer(None, exc)
    return run.result


async def adrive(send: Callable[[Batch], Awaitable[list[Any]]], flow: Flow[T]) -> T:
    """``drive`` for an async ``send``; a ``shield`` batch completes even if the caller is cancelled."""
    run = _Run(flow)
    while (batch := run.next_batch()) is not None:
        try:
            pending = send(batch)
            run.answer(await asyncio.shield(pending) if batch.shield else await pending)
        except Exception as exc:  # handed to the flow, which re-raises what it does not handle
            run.answer(None, exc)
    return run.result
