"""Loyalty for the service: the flows of ``recsys.loyalty.flow`` driven on the async Redis client.

The rules (tier and validity of a reward, stock, idempotent replay, the customer index) are the flow's, the same
ones the sync ``RedisLedger`` drives; this module only sends the flow's batches (through the app's multiplexed
connection when it has one) and turns results into the API's schemas.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import Request
from redis.exceptions import RedisError

from recsys import clock
from recsys.exceptions import CentricError, RewardUnavailable, StoreUnavailable
from recsys.loyalty import ops
from recsys.loyalty.earning import Line
from recsys.loyalty.flow import Batch, CustomerIndex, Flow, LoyaltyFlow, T, adrive
from recsys.loyalty.program import Program, load_program
from recsys.store import scripts
from recsys.store.keys import Keys
from serving.hotpath.redis_mux import MuxRedis
from serving.schemas.loyalty import (
    EarnCreate,
    LedgerResultPublic,
    LoyaltyHistoryPublic,
    LoyaltyPublic,
    OrderLine,
    StatementEntryPublic,
)

__all__ = ["RewardUnavailable"]  # raised by the flow; re-exported where the service's callers look for it

# A customer indexed (SADD acknowledged) by this process within this many seconds is not SADDed again: the index
# is append-only, so the write is one EVALSHA instead of a two-command pipeline (see ``CustomerIndex``).
INDEX_TTL_S = 60.0


@dataclass
class LoyaltyService:
    """The program (loaded once) and the flows on the app's Redis, cached on ``app.state.loyalty``."""

    program: Program
    redis: aioredis.Redis
    keys: Keys
    # the app's multiplexed connection (``app.state.mux``): the flow's batches go through it when set
    mux: MuxRedis | None = None
    # the app's snapshot reader (``app.state.store``): item categories for the program's category multipliers
    store: Any = None
    flow: LoyaltyFlow = field(init=False)

    def __post_init__(self) -> None:
        self.flow = LoyaltyFlow(self.program, self.keys, CustomerIndex(INDEX_TTL_S))

    async def send(self, batch: Batch) -> list[Any]:
        """Send one batch of the flow in one round trip; return the replies (scripts reloaded on NOSCRIPT)."""
        if self.mux is not None:
            # one multiplexed connection per worker: concurrent steps go out in one write, answered after one fsync
            return await scripts.aexecute(self.mux.execute, self.redis, batch.commands)
        return await scripts.arun_batch(self.redis, batch.commands)

    async def drive(self, flow: Flow[T]) -> T:
        """Run a flow of ``self.flow`` to its end; return its result or raise its domain error."""
        return await adrive(self.send, flow)


async def get_loyalty(request: Request) -> LoyaltyService:
    """Return the app's loyalty service, loading ``settings.loyalty_program`` and creating reward stock on first use.

    Raises ``ConfigError`` (a bad program file) on every call until the file is fixed.
    """
    return await loyalty_of(request.app)


async def loyalty_of(app: Any) -> LoyaltyService:
    """Return the loyalty service of ``app`` (a FastAPI app), made on first use (see ``get_loyalty``)."""
    state = app.state
    service = getattr(state, "loyalty", None)
    if service is not None:
        return service
    # created on the app's own loop (no await between check and set, so one lock per app)
    lock = getattr(state, "loyalty_lock", None)
    if lock is None:
        lock = state.loyalty_lock = asyncio.Lock()
    async with lock:
        service = getattr(state, "loyalty", None)
        if service is None:
            program = load_program(state.settings.loyalty_program)
            client, keys = state.redis, state.keys
            service = LoyaltyService(program, client, keys, getattr(state, "mux", None), getattr(state, "store", None))
            await service.drive(service.flow.init_stock())
            await client.script_load(scripts.LEDGER.source)  # the first write is then one round trip
            state.loyalty = service
    return service


def _lines(items: Sequence[OrderLine] | None) -> list[Line]:
    return [Line(x.item_id, x.quantity, x.price) for x in items or ()]


def _answer(svc: LoyaltyService, customer_id: str, out: dict[str, Any]) -> dict[str, Any]:
    # the fields of ``LedgerResultPublic``, in its order (the fast write path serialises this dict as it is)
    return {
        "customer_id": customer_id,
        "entry": out["entry"],
        "balance": out["balance"],
        "debt": out["debt"],
        "tier": svc.flow.tier_name(out["tier"]),
        "replayed": out["replayed"],
    }


def _public(svc: LoyaltyService, customer_id: str, out: dict[str, Any]) -> LedgerResultPublic:
    return LedgerResultPublic(**_answer(svc, customer_id, out))


async def step(svc: LoyaltyService, call: ops.Call, customer_id: str, idem: str) -> dict[str, Any]:
    """Run one ledger step (``LoyaltyFlow.step``: customer index + EVALSHA, one round trip); return the answer.

    The answer is the plain dict of ``LedgerResultPublic``'s fields. Raises the domain error the script answered.
    """
    return _answer(svc, customer_id, await svc.drive(svc.flow.step(call, customer_id, idem)))


async def _run(svc: LoyaltyService, call: ops.Call, customer_id: str, idem: str) -> LedgerResultPublic:
    return LedgerResultPublic(**await step(svc, call, customer_id, idem))


async def earn_call(svc: LoyaltyService, customer_id: str, body: EarnCreate, idem: str, now: datetime) -> ops.Call:
    """Return the ledger call of an earn request, its items' categories looked up (``item_categories``).

    Shared by the route and the fast write path, so both earn the same points for the same order.
    """
    return ops.earn_call(
        svc.program,
        svc.keys,
        customer_id,
        body.order_id,
        body.amount,
        _lines(body.items),
        now,
        idem,
        categories=await item_categories(svc, body),
    )


async def item_categories(svc: LoyaltyService, body: EarnCreate) -> dict[str, str] | None:
    """Return the categories of the order's items from the active snapshot, when the program multiplies by category.

    None when there is nothing to look up (no multipliers, no lines, no store) or no snapshot is active: the
    order then earns at the base rate, as an order whose items the catalog does not know.
    """
    if not svc.program.category_multipliers or not body.items or svc.store is None:
        return None
    try:
        table = await svc.store.items()
    except CentricError:
        return None
    out = {}
    for line in body.items:
        pos = table.index.get(line.item_id)
        if pos is not None and table.categories[pos] is not None:
            out[line.item_id] = table.categories[pos]
    return out


def reverse_call(
    svc: LoyaltyService, customer_id: str, order_id: str, items: Sequence[OrderLine] | None, idem: str, now: datetime
) -> ops.Call:
    """Return the ledger call of a reverse request (shared by the route and the fast write path)."""
    returned = None if items is None else sum((x.quantity * x.price for x in items), Decimal(0))
    return ops.reverse_call(svc.keys, customer_id, order_id, returned, now, idem)


async def earn(svc: LoyaltyService, customer_id: str, body: EarnCreate, idem: str, now: datetime) -> LedgerResultPublic:
    """Earn points for an order. Raises ``IdempotencyConflict`` (incl. ``DuplicateOrder``)."""
    return await _run(svc, await earn_call(svc, customer_id, body, idem, now), customer_id, idem)


async def redeem(
    svc: LoyaltyService, customer_id: str, reward_id: str, quantity: int, idem: str, now: datetime
) -> LedgerResultPublic:
    """Redeem a reward (``LoyaltyFlow.redeem``: tier and validity, stock reservation, debit, release if refused).

    Raises ``UnknownReward``, ``OutOfStock``, ``InsufficientPoints``, ``IdempotencyConflict``; ``RewardUnavailable``
    (a ``Conflict``) when the customer's tier may not redeem it or it is outside its validity window.
    """
    out = await svc.drive(svc.flow.redeem(customer_id, reward_id, quantity, now, idem))
    return _public(svc, customer_id, out)


async def reverse(
    svc: LoyaltyService, customer_id: str, order_id: str, items: Sequence[OrderLine] | None, idem: str, now: datetime
) -> LedgerResultPublic:
    """Reverse an order, or the share of it that ``items`` are worth.

    Raises ``UnknownOrder``, ``IdempotencyConflict``.
    """
    return await _run(svc, reverse_call(svc, customer_id, order_id, items, idem, now), customer_id, idem)


async def grant(
    svc: LoyaltyService, grants: Sequence[tuple[str, int]], reason: str, idem: str, now: datetime
) -> list[LedgerResultPublic]:
    """Grant points to many customers; each customer's grant is idempotent under ``<key>:<customer>``.

    Raises ``DuplicateGrantCustomer`` (409, nothing applied) when a customer is listed twice: the two lines would
    share one idempotency key. (A JSON schema cannot state "unique by customer_id", so this is not a 422.)
    """
    results = await svc.drive(svc.flow.grant_many(grants, reason, idem, now))
    return [_public(svc, cid, out) for cid, out in results]


async def account(svc: LoyaltyService, customer_id: str, now: datetime) -> LoyaltyPublic:
    """Return where the customer stands (``LoyaltyFlow.standing``): balance, tier, progress to the next tier,
    points expiring in 30 days and the rewards the tier may redeem."""
    view = await svc.drive(svc.flow.standing(customer_id, now))
    return LoyaltyPublic.model_validate(view, from_attributes=True)


def utcnow() -> datetime:
    """Return the current time, tz-aware UTC: :func:`recsys.clock.utcnow` (tests set that clock)."""
    return clock.utcnow()


async def statement(
    svc: LoyaltyService, customer_id: str, offset: int, limit: int, before: int | None = None
) -> LoyaltyHistoryPublic:
    """Return a page of the customer's ledger entries, newest first (an unknown customer has an empty statement).

    Entries are numbered 1, 2, … in ledger order and the ledger only appends, so ``before`` (only entries numbered
    below it) is a cursor that stays put while new entries arrive; ``offset`` counts from the newest entry, or from
    ``before`` when given. Raises ``StoreUnavailable`` when Redis fails.
    """
    key = svc.keys.loyalty_entries(customer_id)
    try:
        total = int(await svc.redis.llen(key))
        # entries are appended oldest first: the page is the ``limit`` entries just below ``end - offset``
        end = total if before is None else min(before - 1, total)
        stop, start = end - 1 - offset, max(end - offset - limit, 0)
        raw = await svc.redis.lrange(key, start, stop) if stop >= start else []
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read the loyalty statement of {customer_id!r}: {exc}") from exc
    entries = []
    for blob in reversed(raw):
        entry = orjson.loads(blob)
        entries.append(
            StatementEntryPublic(
                entry_id=str(entry.get("id", "")),
                type=str(entry.get("type", "")),
                amount=int(entry.get("amount", 0)),
                at=datetime.fromtimestamp(int(entry.get("at", 0)), UTC),
                reason=str(entry.get("reason") or ""),
                source=str(entry.get("source") or ""),
            )
        )
    more = bool(raw) and start > 0
    return LoyaltyHistoryPublic(
        customer_id=customer_id,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
        next_before=start + 1 if more else None,
        entries=entries,
    )
