"""The Redis ledger: every change is one Lua script on one customer's keys.

Why a Lua script and not WATCH/MULTI/EXEC: an earn reads the tier, the first-order flag, the debt and the
rolling-window earnings and then writes balance, lots, entry, order and idempotency record. With WATCH,
concurrent retries of the same key on a hot customer abort and loop (livelock under load, a round trip per
attempt); a script runs all reads and writes as one indivisible step on the server, in one round trip, so
"same idempotency key → one effect" holds even when retries race. Scripts are sent by sha1 through
``recsys.store.scripts`` (which reloads them on NOSCRIPT, e.g. after a restart).

Every decision (tier and validity of a reward, stock reservation and release, replay of a decided key, the
customer index) is made once, in ``recsys.loyalty.flow``; this module drives those flows on a redis-py client,
as ``serving.services.loyalty`` drives the same flows on the service's async client.

Redeem touches two hash tags (customer and reward stock), which Redis Cluster cannot change in one script.
It is two steps: reserve stock (idempotent per key, bound to the payload hash), then debit the customer;
if the debit is refused the reservation is released. The refusal is recorded under the key, so a retry
racing the refused original (which may find the reservation still held, then debit after a concurrent earn)
is refused too: a debit never stands without its reservation. Only a definite refusal releases; when the
outcome is unknown (connection lost, request cancelled) the reservation stays. A crash between the steps
can leave a reservation without a ledger entry; it is visible as ``res:<len>:<customer>:<key>`` in the stock
hash and a retry with the same key completes it (the reservation is found, the debit applied). Stock therefore
never goes below zero and is never double-counted.

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

from recsys.loyalty import ops
from recsys.loyalty.earning import Line
from recsys.loyalty.flow import Batch, Flow, LoyaltyFlow, Standing, T, drive
from recsys.loyalty.program import Program
from recsys.store import scripts
from recsys.store.keys import Fields, Keys


class RedisLedger:
    """Synchronous ledger on a ``redis.Redis`` client (jobs, CLI, tests). Methods return the script result dict."""

    def __init__(self, client: redis.Redis, keys: Keys, program: Program) -> None:
        self.client, self.keys, self.program = client, keys, program
        self.flow = LoyaltyFlow(program, keys)

    def _send(self, batch: Batch) -> list[Any]:
        return scripts.run_batch(self.client, batch.commands)

    def _drive(self, flow: Flow[T]) -> T:
        return drive(self._send, flow)

    def run(self, call: ops.Call, customer_id: str, idem: str) -> dict[str, Any]:
        """Run one prepared call (with the customer index's SADD, one round trip); return its result.

        Raises the domain error the script answered.
        """
        return self._drive(self.flow.step(call, customer_id, idem))

    def run_many(self, calls: Sequence[tuple[ops.Call, str]]) -> list[Any]:
        """Run calls in one pipeline (not a transaction; each script is atomic on its own); return raw answers.

        For the backfill: an answer is the script's raw reply or the error it raised, in order; ``ops.parse`` reads it.
        """
        batch = self.flow.indexed((cid for _, cid in calls), (call for call, _ in calls))
        return scripts.run_batch(self.client, batch.commands, raise_on_error=False)[1:]

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
        return self._drive(self.flow.earn(customer_id, order_id, amount, lines, now, idem, categories))

    def redeem(self, customer_id: str, reward_id: str, quantity: int, now: datetime, idem: str) -> dict[str, Any]:
        """Redeem a reward (``LoyaltyFlow.redeem``: tier, validity, stock, debit).

        Raises ``UnknownReward``, ``RewardUnavailable``, ``OutOfStock``, ``InsufficientPoints``,
        ``IdempotencyConflict``.
        """
        return self._drive(self.flow.redeem(customer_id, reward_id, quantity, now, idem))

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
            for chunk in _chunks(
                self.client.hscan_iter(stock_key, match=f"{Fields.RESERVATION_PREFIX}*", count=page), page
            ):
                named = [(field, value, parsed) for field, value in chunk if (parsed := ops.parse_reservation(field))]
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
        return self._drive(self.flow.reverse(customer_id, order_id, returned, now, idem))

    def grant(
        self, customer_id: str, points: int, reason: str, now: datetime, idem: str, op: str = "grant"
    ) -> dict[str, Any]:
        """Grant points (``op='adjust'`` allows negative, refused if it would overdraw)."""
        return self._drive(self.flow.grant(customer_id, points, reason, now, idem, op))

    def grant_many(
        self, grants: Sequence[tuple[str, int]], reason: str, idem: str, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        """Grant points to many customers at once (``LoyaltyFlow.grant_many``); return ``[(customer_id, result)]``."""
        return self._drive(self.flow.grant_many(grants, reason, idem, now))

    def expire(self, customer_id: str, now: datetime, review_tier: bool = False) -> dict[str, Any]:
        """Expire the customer's lots due at ``now`` (and review the tier at period end).

        Returns ``{"expired", "balance", "tier"}``.
        """
        return self._drive(self.flow.expire(customer_id, now, review_tier))

    def standing(self, customer_id: str, now: datetime) -> Standing:
        """Return where the customer stands (``LoyaltyFlow.standing``: what ``GET .../loyalty`` shows)."""
        return self._drive(self.flow.standing(customer_id, now))

    def init_stock(self) -> None:
        """Create each reward's stock counter from the program if it does not exist yet (``LoyaltyFlow.init_stock``)."""
        self._drive(self.flow.init_stock())

    def stock(self, reward_id: str) -> int | None:
        """Return the reward's remaining stock, or None when it has no record."""
        value = self.client.hget(self.keys.loyalty_stock(reward_id), Fields.STOCK)
        return None if value is None else int(value)

    def account(self, customer_id: str) -> dict[str, Any]:
        """Return the decoded account (see ``ops.decode_account``)."""
        return ops.decode_account(self.client.hgetall(self.keys.loyalty_account(customer_id)))

    def entries(self, customer_id: str) -> list[dict[str, Any]]:
        """Return the customer's ledger entries, oldest first."""
        return [json.loads(e) for e in self.client.lrange(self.keys.loyalty_entries(customer_id), 0, -1)]

    def customers(self) -> list[str]:
        """Return every customer id with a ledger, sorted."""
        return indexed_customers(self.client, self.keys)


def indexed_customers(client: redis.Redis, keys: Keys) -> list[str]:
    """Return every customer id in the ledger's customer index, sorted (for reconcile, expire, export)."""
    return sorted(c.decode() if isinstance(c, bytes) else c for c in client.smembers(keys.loyalty_customers()))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
