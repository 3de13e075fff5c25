"""The Redis ledger: every change is one Lua script on one customer's keys.

Why a Lua script and not WATCH/MULTI/EXEC: an earn reads the tier, the first-order flag, the debt and the
rolling-window earnings and then writes balance, lots, entry, order and idempotency record. With WATCH,
concurrent retries of the same key on a hot customer abort and loop (livelock under load, a round trip per
attempt); a script runs all reads and writes as one indivisible step on the server, in one round trip, so
"same idempotency key → one effect" holds even when retries race. Scripts are loaded once
(``register_script`` uses EVALSHA and reloads on NOSCRIPT, e.g. after a restart).

Redeem touches two hash tags (customer and reward stock), which Redis Cluster cannot change in one script.
It is two steps: reserve stock (idempotent per key, bound to the payload hash), then debit the customer;
if the debit is refused the reservation is released. The refusal is recorded under the key, so a retry
racing the refused original (which may find the reservation still held, then debit after a concurrent earn)
is refused too: a debit never stands without its reservation. Only a definite refusal releases; when the
outcome is unknown (connection lost, request cancelled) the reservation stays. A crash between the steps
can leave a reservation without a ledger entry; it is visible as ``res:<len>:<customer>:<key>`` in the stock hash
and a retry with the same key completes it (the reservation is found, the debit applied). Stock therefore never goes
below zero and is never double-counted.

Reversal rule: a reversal takes back exactly the points the order earned (proportionally for partial
returns, cumulatively so partials sum to the whole). If the customer already spent them, the balance goes
to zero, never below; the rest is recorded as ``shortfall`` on the entry and added to ``debt``, which
future credits pay off first (their entry's ``debt_paid``). A return after the order's points reached their
expiry date takes no points and books no debt (they left the balance then, by expiry or spending), and only
lowers the tier window. A return worth nothing (a free item) reverses nothing; omitting the items reverses
the whole order. Invariant: balance == sum of entry amounts ==
sum of lot remainders, balance >= 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis
from redis.exceptions import NoScriptError

from recsys.exceptions import CentricError
from recsys.loyalty import ops
from recsys.loyalty.earning import Line
from recsys.loyalty.program import Program
from recsys.store.keys import Keys


def decode_account(raw: dict[Any, Any]) -> dict[str, Any]:
    """Return an account hash as ``{"balance", "debt", "tier", "orders", "earned": {YYYYMM: n}, "lots": {epoch:
    n}}``."""
    acct: dict[str, Any] = {"balance": 0, "debt": 0, "tier": 0, "orders": 0, "earned": {}, "lots": {}}
    for k, v in raw.items():
        k = k.decode() if isinstance(k, bytes) else k
        n = int(v)
        if k.startswith("em:"):
            acct["earned"][k[3:]] = n
        elif k.startswith("lot:"):
            acct["lots"][int(k[4:])] = n
        elif k in acct:
            acct[k] = n
    return acct


class RedisLedger:
    """Synchronous ledger on a ``redis.Redis`` client (jobs, CLI, tests). Methods return the script result dict."""

    def __init__(self, client: redis.Redis, keys: Keys, program: Program) -> None:
        self.client, self.keys, self.program = client, keys, program
        self._ledger = client.register_script(ops.LEDGER_LUA)
        self._stock = client.register_script(ops.STOCK_LUA)

    def run(self, call: ops.Call, customer_id: str, idem: str) -> dict[str, Any]:
        """Run one prepared call; return its result. Raises the domain error the script answered.

        One round trip for the index and the step: EVALSHA sent directly (a ``Script`` in a pipeline first asks
        SCRIPT EXISTS, a second round trip); on NOSCRIPT (e.g. after a restart) the script is loaded and sent again.
        """
        for attempt in (0, 1):
            pipe = self.client.pipeline(transaction=False)
            pipe.sadd(self.keys.loyalty_customers(), customer_id)
            pipe.execute_command("EVALSHA", self._ledger.sha, len(call.keys), *call.keys, *call.args)
            try:
                answer = pipe.execute()[1]
            except NoScriptError:
                if attempt:
                    raise
                self.client.script_load(ops.LEDGER_LUA)
                continue
            return ops.parse(answer, customer_id, idem)
        raise AssertionError("unreachable")

    def run_many(self, calls: Sequence[tuple[ops.Call, str]], pipe: Any | None = None) -> list[Any]:
        """Run calls in one pipeline (not a transaction; each script is atomic on its own); return raw answers."""
        pipe = pipe or self.client.pipeline(transaction=False)
        pipe.sadd(self.keys.loyalty_customers(), *{c for _, c in calls})
        for call, _ in calls:
            self._ledger(keys=call.keys, args=call.args, client=pipe)
        return pipe.execute(raise_on_error=False)[1:]

    def earn(
        self,
        customer_id: str,
        order_id: str,
        amount: Decimal,
        lines: Sequence[Line],
        now: datetime,
        idem: str,
        categories: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Earn points for an order (``categories``: item id -> category, for the program's category multipliers).

        Raises ``IdempotencyConflict``/``DuplicateOrder``.
        """
        call = ops.earn_call(
            self.program, self.keys, customer_id, order_id, amount, lines, now, idem, categories=categories
        )
        return self.run(call, customer_id, idem)

    def redeem(self, customer_id: str, reward_id: str, quantity: int, now: datetime, idem: str) -> dict[str, Any]:
        """Redeem a reward. Raises ``UnknownReward``, ``OutOfStock``, ``InsufficientPoints``,
        ``IdempotencyConflict``."""
        call = ops.redeem_call(self.program, self.keys, customer_id, reward_id, quantity, now, idem)
        if self.client.hexists(self.keys.loyalty_idempotency(customer_id), idem):
            return self.run(call, customer_id, idem)  # already decided: replay it; its stock was settled then
        stock_key = self.keys.loyalty_stock(reward_id)
        ops.check_stock(
            self._stock(keys=[stock_key], args=ops.stock_args("reserve", customer_id, idem, reward_id, quantity)),
            reward_id,
            idem,
        )
        try:
            return self.run(call, customer_id, idem)
        except CentricError:  # a definite refusal; on any other error the debit may have run: keep the stock
            self._stock(keys=[stock_key], args=ops.stock_args("release", customer_id, idem, reward_id, quantity))
            raise

    def prune_reservations(self, page: int = 1000) -> dict[str, int]:
        """Drop the stock reservations of redemptions the ledger has decided; return ``{"pruned", "open"}``.

        A decided key is answered from the customer's idempotency record (``redeem`` checks it first), so its
        reservation is no longer needed. A refused one goes only once released. Open reservations (a crash
        between the two steps, or a request in flight) stay: a retry with the same key completes them.
        Never changes a stock count.
        """
        pruned = still_open = 0
        for reward_id in self.program.rewards:
            stock_key = self.keys.loyalty_stock(reward_id)
            for chunk in _chunks(self.client.hscan_iter(stock_key, match="res:*", count=page), page):
                named = [
                    (field, value, parsed)
                    for field, value in chunk
                    if (parsed := ops.parse_reservation(field)) is not None
                ]
                pipe = self.client.pipeline(transaction=False)
                for _, _, (customer_id, idem) in named:
                    pipe.hget(self.keys.loyalty_idempotency(customer_id), idem)
                drop = []
                for (field, value, _), record in zip(named, pipe.execute(), strict=True):
                    refused = record is not None and record.partition(b"|")[2].startswith(b"!")  # a recorded refusal
                    if record is not None and (not refused or value == b"released"):
                        drop.append(field)
                still_open += len(named) - len(drop)
                if drop:
                    pruned += self.client.hdel(stock_key, *drop)
        return {"pruned": pruned, "open": still_open}

    def reverse(
        self, customer_id: str, order_id: str, returned: Decimal | None, now: datetime, idem: str
    ) -> dict[str, Any]:
        """Reverse an order (or ``returned`` currency units of it). Raises ``UnknownOrder``, ``IdempotencyConflict``."""
        return self.run(ops.reverse_call(self.keys, customer_id, order_id, returned, now, idem), customer_id, idem)

    def grant(
        self, customer_id: str, points: int, reason: str, now: datetime, idem: str, op: str = "grant"
    ) -> dict[str, Any]:
        """Grant points (``op='adjust'`` allows negative, refused if it would overdraw)."""
        return self.run(
            ops.grant_call(self.program, self.keys, customer_id, points, reason, now, idem, op), customer_id, idem
        )

    def expire(self, customer_id: str, now: datetime, review_tier: bool = False) -> dict[str, Any]:
        """Expire the customer's lots due at ``now`` (and review the tier at period end); return ``{"expired",
        "balance", "tier"}``."""
        return self.run(
            ops.expire_call(self.keys, customer_id, now, self.program if review_tier else None), customer_id, ""
        )

    def init_stock(self) -> None:
        """Create each reward's stock counter from the program if it does not exist yet (never resets live stock)."""
        pipe = self.client.pipeline(transaction=False)
        for reward in self.program.rewards.values():
            pipe.hsetnx(self.keys.loyalty_stock(reward.id), "stock", reward.stock)
        pipe.execute()

    def stock(self, reward_id: str) -> int | None:
        """Return the reward's remaining stock, or None when it has no record."""
        value = self.client.hget(self.keys.loyalty_stock(reward_id), "stock")
        return None if value is None else int(value)

    def account(self, customer_id: str) -> dict[str, Any]:
        """Return the decoded account (see ``decode_account``)."""
        return decode_account(self.client.hgetall(self.keys.loyalty_account(customer_id)))

    def entries(self, customer_id: str) -> list[dict[str, Any]]:
        """Return the customer's ledger entries, oldest first."""
        return [json.loads(e) for e in self.client.lrange(self.keys.loyalty_entries(customer_id), 0, -1)]

    def customers(self) -> list[str]:
        """Return every customer id with a ledger."""
        return sorted(c.decode() for c in self.client.smembers(self.keys.loyalty_customers()))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
