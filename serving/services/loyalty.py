"""Loyalty for the service: the same ledger scripts and rules as ``recsys.loyalty``, on the async Redis client."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from fastapi import Request
from redis.exceptions import NoScriptError, ResponseError

from recsys import clock
from recsys.exceptions import CentricError, Conflict, DataError
from recsys.loyalty import ops
from recsys.loyalty.earning import Line, months_window
from recsys.loyalty.ledger import decode_account
from recsys.loyalty.program import Program, load_program
from recsys.store.keys import Keys
from serving.hotpath.redis_mux import MuxRedis
from serving.schemas.loyalty import (
    EarnCreate,
    LedgerResultPublic,
    LoyaltyPublic,
    OrderLine,
    RewardPublic,
)


class RewardUnavailable(Conflict):
    """The reward exists but not for this customer's tier, or not at this time."""


@dataclass
class LoyaltyService:
    """The program (loaded once) and the registered scripts, cached on ``app.state.loyalty``."""

    program: Program
    redis: aioredis.Redis
    keys: Keys
    ledger: Any
    stock: Any
    # the app's multiplexed connection (``app.state.mux``): ledger steps go through it when set, else through ``redis``
    mux: MuxRedis | None = None
    # the app's snapshot reader (``app.state.store``): item categories for the program's category multipliers
    store: Any = None
    # customer id -> monotonic time this process last had the customer's SADD to the index acknowledged
    indexed: dict[str, float] = field(default_factory=dict)


# A customer indexed (SADD acknowledged) by this process within this many seconds is not SADDed again: the index
# is append-only, so the write is one EVALSHA instead of a two-command pipeline. A ledger created meanwhile (its
# first entry, after a data reset) is indexed at once; an index emptied by hand heals within this time.
INDEX_TTL_S = 60.0
_INDEX_MAX = 100_000


async def get_loyalty(request: Request) -> LoyaltyService:
    """Return the app's loyalty service, loading ``settings.loyalty_program`` and creating reward stock on first use.

    Raises ``ConfigError`` (a bad program file) on every call until the file is fixed.
    """
    state = request.app.state
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
            for reward in program.rewards.values():
                await client.hsetnx(keys.loyalty_stock(reward.id), "stock", reward.stock)
            await client.script_load(ops.LEDGER_LUA)  # `step` sends EVALSHA only (and reloads on NOSCRIPT)
            service = LoyaltyService(
                program,
                client,
                keys,
                client.register_script(ops.LEDGER_LUA),
                client.register_script(ops.STOCK_LUA),
                getattr(state, "mux", None),
                getattr(state, "store", None),
            )
            state.loyalty = service
    return service


def _lines(items: Sequence[OrderLine] | None) -> list[Line]:
    return [Line(x.item_id, x.quantity, x.price) for x in items or ()]


def _answer(svc: LoyaltyService, customer_id: str, out: dict[str, Any]) -> dict[str, Any]:
    # the fields of ``LedgerResultPublic``, in its order (the fast write path serialises this dict as it is)
    tiers = svc.program.tiers
    return {
        "customer_id": customer_id,
        "entry": out["entry"],
        "balance": out["balance"],
        "debt": out["debt"],
        "tier": tiers[min(out["tier"], len(tiers) - 1)].name,
        "replayed": out["replayed"],
    }


def _public(svc: LoyaltyService, customer_id: str, out: dict[str, Any]) -> LedgerResultPublic:
    return LedgerResultPublic(**_answer(svc, customer_id, out))


def _noscript(exc: ResponseError) -> bool:
    # redis-py raises NoScriptError; the mux hands back the error reply itself ("NOSCRIPT No matching script...")
    return isinstance(exc, NoScriptError) or str(exc).startswith("NOSCRIPT")


async def _send(svc: LoyaltyService, args: tuple[Any, ...], customer_id: str, index: bool) -> Any:
    """Send the EVALSHA (after the customer index's SADD when ``index``) in one write; return the script's answer."""
    mux = svc.mux
    if mux is not None:
        # one multiplexed connection per worker: concurrent steps go out in one write, answered after one fsync
        if index:
            return (await mux.execute(("SADD", svc.keys.loyalty_customers(), customer_id), args))[1]
        return (await mux.execute(args))[0]
    if not index:
        return await svc.redis.execute_command(*args)
    pipe = svc.redis.pipeline(transaction=False)
    pipe.sadd(svc.keys.loyalty_customers(), customer_id)
    pipe.execute_command(*args)
    return (await pipe.execute(raise_on_error=True))[1]


async def step(svc: LoyaltyService, call: ops.Call, customer_id: str, idem: str) -> dict[str, Any]:
    """Run one ledger step in one round trip (customer index + EVALSHA); return the answer as a plain dict.

    Not ``Script.__call__`` on a pipeline: redis-py then sends SCRIPT EXISTS first, a second round trip per write.
    Sent through ``svc.mux`` when the app has one, else through the redis-py client; the answers are the same.
    After a Redis restart (NOSCRIPT) the script is loaded and the step sent again; nothing ran the first time.
    Raises the domain error the script answered.
    """
    seen = svc.indexed.get(customer_id)
    cached = seen is not None and time.monotonic() - seen < INDEX_TTL_S
    args = ("EVALSHA", svc.ledger.sha, len(call.keys), *call.keys, *call.args)
    for attempt in (0, 1):
        try:
            answer = await _send(svc, args, customer_id, not cached)
        except ResponseError as exc:
            if attempt or not _noscript(exc):
                raise
            await svc.redis.script_load(ops.LEDGER_LUA)
            continue
        break
    if not cached:
        if len(svc.indexed) >= _INDEX_MAX:
            svc.indexed.clear()
        svc.indexed[customer_id] = time.monotonic()
    out = ops.parse(answer, customer_id, idem)
    if cached and not out["replayed"] and (out.get("entry") or {}).get("id") == f"{customer_id}:1":
        # this ledger's first entry although the customer was indexed: the data was reset meanwhile
        if svc.mux is not None:
            await svc.mux.execute(("SADD", svc.keys.loyalty_customers(), customer_id))
        else:
            await svc.redis.sadd(svc.keys.loyalty_customers(), customer_id)
        svc.indexed[customer_id] = time.monotonic()
    return _answer(svc, customer_id, out)


async def _run(svc: LoyaltyService, call: ops.Call, customer_id: str, idem: str) -> LedgerResultPublic:
    return LedgerResultPublic(**await step(svc, call, customer_id, idem))


def earn_call(
    svc: LoyaltyService,
    customer_id: str,
    body: EarnCreate,
    idem: str,
    now: datetime,
    categories: Mapping[str, str] | None = None,
) -> ops.Call:
    """Return the ledger call of an earn request (shared by the route and the fast write path)."""
    return ops.earn_call(
        svc.program,
        svc.keys,
        customer_id,
        body.order_id,
        body.amount,
        _lines(body.items),
        now,
        idem,
        categories=categories,
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
    call = earn_call(svc, customer_id, body, idem, now, await item_categories(svc, body))
    return await _run(svc, call, customer_id, idem)


async def redeem(
    svc: LoyaltyService, customer_id: str, reward_id: str, quantity: int, idem: str, now: datetime
) -> LedgerResultPublic:
    """Reserve stock, then debit; release the reservation when the debit is refused.

    Raises ``UnknownReward``, ``OutOfStock``, ``InsufficientPoints``, ``IdempotencyConflict``; ``Conflict`` when the
    customer's tier may not redeem it or it is outside its validity window.
    """
    reward = ops.reward_of(svc.program, reward_id)
    pipe = svc.redis.pipeline(transaction=False)
    pipe.hgetall(svc.keys.loyalty_account(customer_id))
    pipe.hexists(svc.keys.loyalty_idempotency(customer_id), idem)
    raw, decided = await pipe.execute()
    if decided:
        # a retry of a redemption already decided: the ledger answers what it recorded (the entry, a refusal or a
        # conflict), even if the tier or the reward's validity changed since; its stock was settled then
        return await _run(
            svc, ops.redeem_call(svc.program, svc.keys, customer_id, reward_id, quantity, now, idem), customer_id, idem
        )
    acct = decode_account(raw)
    tier = svc.program.tiers[min(acct["tier"], len(svc.program.tiers) - 1)].name
    if not reward.available(tier, now):
        raise RewardUnavailable(
            f"reward {reward_id!r} is not available to tier {tier!r} now (tiers {list(reward.tiers) or 'all'}, "
            f"valid {reward.valid_from} to {reward.valid_to})"
        )
    call = ops.redeem_call(svc.program, svc.keys, customer_id, reward_id, quantity, now, idem)
    stock_key = svc.keys.loyalty_stock(reward_id)
    ops.check_stock(
        await svc.stock(keys=[stock_key], args=ops.stock_args("reserve", customer_id, idem, reward_id, quantity)),
        reward_id,
        idem,
    )
    try:
        return await _run(svc, call, customer_id, idem)
    except CentricError:
        # a definite refusal (recorded under the key, so no retry can debit later): give the stock back. On a
        # lost connection or a cancelled request the debit may have run; the reservation stays for a retry.
        await asyncio.shield(
            svc.stock(keys=[stock_key], args=ops.stock_args("release", customer_id, idem, reward_id, quantity))
        )
        raise


async def reverse(
    svc: LoyaltyService, customer_id: str, order_id: str, items: Sequence[OrderLine] | None, idem: str, now: datetime
) -> LedgerResultPublic:
    """Reverse an order, or the share of it that ``items`` are worth. Raises ``UnknownOrder``, ``IdempotencyConflict``."""
    return await _run(svc, reverse_call(svc, customer_id, order_id, items, idem, now), customer_id, idem)


async def grant(
    svc: LoyaltyService, grants: Sequence[tuple[str, int]], reason: str, idem: str, now: datetime
) -> list[LedgerResultPublic]:
    """Grant points to many customers; each customer's grant is idempotent under ``<key>:<customer>``.

    Raises ``DataError`` (nothing applied) when a customer is listed twice: the two lines would share one key.
    """
    counts = Counter(cid for cid, _ in grants)
    if twice := sorted(cid for cid, n in counts.items() if n > 1):
        raise DataError(f"customers listed more than once in one grant: {twice[:10]}; send one line per customer")
    calls = [
        (cid, ops.grant_call(svc.program, svc.keys, cid, pts, reason, now, f"{idem}:{cid}", source=f"grant:{idem}"))
        for cid, pts in grants
    ]
    pipe = svc.redis.pipeline(transaction=False)
    pipe.sadd(svc.keys.loyalty_customers(), *{cid for cid, _ in calls})
    for _, call in calls:
        await svc.ledger(keys=call.keys, args=call.args, client=pipe)
    answers = (await pipe.execute())[1:]
    return [_public(svc, cid, ops.parse(a, cid, f"{idem}:{cid}")) for (cid, _), a in zip(calls, answers, strict=True)]


async def account(svc: LoyaltyService, customer_id: str, now: datetime) -> LoyaltyPublic:
    """Return balance, tier, progress to the next tier, points expiring in 30 days and the rewards the tier may redeem."""
    program, keys = svc.program, svc.keys
    pipe = svc.redis.pipeline(transaction=False)
    pipe.hgetall(keys.loyalty_account(customer_id))
    rewards = list(program.rewards.values())
    for reward in rewards:
        pipe.hget(keys.loyalty_stock(reward.id), "stock")
    raw, *stocks = await pipe.execute()
    acct = decode_account(raw)
    idx = min(acct["tier"], len(program.tiers) - 1)
    tier = program.tiers[idx]
    earned = sum(acct["earned"].get(m, 0) for m in months_window(now, program.window_months))
    nxt = program.tiers[idx + 1] if idx + 1 < len(program.tiers) else None
    to_next = max(nxt.threshold - earned, 0) if nxt else 0
    pct = (
        100.0
        if nxt is None
        else round(min(100.0, 100.0 * max(earned - tier.threshold, 0) / (nxt.threshold - tier.threshold)), 1)
    )
    start, horizon = now.timestamp(), (now + timedelta(days=30)).timestamp()
    # lots already past expiry are removed by the next write or `centric loyalty expire`; they are not "expiring"
    expiring = sum(n for exp, n in acct["lots"].items() if start < exp <= horizon)
    # points past their expiry date are gone even before a write or `centric loyalty expire` books it
    balance = acct["balance"] - sum(n for exp, n in acct["lots"].items() if exp <= start)
    public = [
        RewardPublic(reward_id=r.id, name=r.name, cost=r.cost, stock=int(s or 0), affordable=balance >= r.cost)
        for r, s in zip(rewards, stocks, strict=True)
        if r.available(tier.name, now) and int(s or 0) > 0
    ]
    return LoyaltyPublic(
        customer_id=customer_id,
        balance=balance,
        debt=acct["debt"],
        tier=tier.name,
        next_tier=nxt.name if nxt else None,
        points_to_next_tier=to_next,
        progress_pct=pct,
        earned_in_window=earned,
        expiring_30d=expiring,
        rewards=public,
    )


def utcnow() -> datetime:
    """Return the current time, tz-aware UTC: :func:`recsys.clock.utcnow` (tests set that clock)."""
    return clock.utcnow()
