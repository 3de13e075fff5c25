"""Ledger operations as data: what one script call needs, and how its answer becomes a result or a domain error.

The steps of ``recsys.loyalty.flow`` (driven by the sync ledger and by the service alike) are built from these.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from recsys.exceptions import (
    ConfigError,
    IdempotencyConflict,
    InsufficientPoints,
    NotFound,
    OutOfStock,
    UnknownReward,
)
from recsys.loyalty.earning import (
    Line,
    add_months,
    base_value,
    cents,
    expiry_epoch,
    month_label,
    months_window,
    points_per_tier,
)
from recsys.loyalty.program import Program
from recsys.store.keys import Fields, Keys


def decode_account(raw: Mapping[Any, Any] | Sequence[Any]) -> dict[str, Any]:
    """Return an account hash as ``{"balance", "debt", "tier", "orders", "earned": {YYYYMM: n}, "lots": {epoch: n}}``.

    ``raw`` is HGETALL's answer: a mapping (redis-py) or the flat field/value list (a raw RESP2 reply).
    """
    pairs = raw.items() if isinstance(raw, Mapping) else zip(raw[::2], raw[1::2], strict=True)
    acct: dict[str, Any] = {"balance": 0, "debt": 0, "tier": 0, "orders": 0, "earned": {}, "lots": {}}
    for k, v in pairs:
        k = k.decode() if isinstance(k, bytes) else k
        n = int(v)
        if k.startswith(Fields.ACCOUNT_EARNED_PREFIX):
            acct["earned"][k[len(Fields.ACCOUNT_EARNED_PREFIX) :]] = n
        elif k.startswith(Fields.ACCOUNT_LOT_PREFIX):
            acct["lots"][int(k[len(Fields.ACCOUNT_LOT_PREFIX) :])] = n
        elif k in acct:
            acct[k] = n
    return acct


def live_balance(acct: Mapping[str, Any], now: datetime) -> int:
    """Return a decoded account's balance without the points past their expiry date at ``now``.

    Those points are gone even before a write or `centric loyalty expire` books their expiry.
    """
    start = now.timestamp()
    return int(acct["balance"]) - sum(n for exp, n in acct["lots"].items() if exp <= start)


def expiring_points(acct: Mapping[str, Any], now: datetime, days: int = 30) -> int:
    """Return the points of a decoded account that expire after ``now`` and within ``days`` days.

    Lots already past expiry are removed by the next write or `centric loyalty expire`; they are not "expiring".
    """
    start, horizon = now.timestamp(), (now + timedelta(days=days)).timestamp()
    return sum(n for exp, n in acct["lots"].items() if start < exp <= horizon)


def repeated_customers(customer_ids: Iterable[str]) -> list[str]:
    """Return the customer ids listed more than once, sorted (a bulk grant must list each customer once: each grant
    is idempotent under ``<key>:<customer>``, so two lines for one customer cannot both apply)."""
    counts = Counter(customer_ids)
    return sorted(cid for cid, n in counts.items() if n > 1)


class UnknownOrder(NotFound):
    """A reversal names an order this customer's ledger never earned on."""


class DuplicateOrder(IdempotencyConflict):
    """An order already earned points under another idempotency key."""


@dataclass(frozen=True)
class Call:
    """One ledger script call: keys and arguments."""

    keys: list[str]
    args: list[str]


def _epoch(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware UTC")
    return int(now.timestamp())


def payload_hash(op: str, payload: Mapping[str, Any]) -> str:
    """Return the sha256 of the canonical JSON of ``op`` + ``payload`` (what an idempotency key is bound to)."""
    body = json.dumps({"op": op, **payload}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def ledger_keys(keys: Keys, customer_id: str) -> list[str]:
    """Return the five per-customer keys the ledger script touches (one hash tag)."""
    return [
        keys.loyalty_account(customer_id),
        keys.loyalty_lots(customer_id),
        keys.loyalty_entries(customer_id),
        keys.loyalty_idempotency(customer_id),
        keys.loyalty_orders(customer_id),
    ]


def _json(value: Any) -> str:
    # orjson is ~8x faster; the script decodes either text to the same values. json for what orjson refuses
    # (lone surrogates in strings), so every call that worked before still does.
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _call(
    keys: Keys,
    op: str,
    customer_id: str,
    idem: str,
    payload: Mapping[str, Any],
    now: datetime,
    params: Mapping[str, Any],
) -> Call:
    args = [op, idem, payload_hash(op, payload) if idem else "", str(_epoch(now)), customer_id, _json(params)]
    return Call(ledger_keys(keys, customer_id), args)


def earn_call(
    program: Program,
    keys: Keys,
    customer_id: str,
    order_id: str,
    amount: Decimal,
    lines: Sequence[Line],
    now: datetime,
    idem: str,
    categories: Mapping[str, str] | None = None,
    value: Decimal | None = None,
) -> Call:
    """Return the call that earns points for an order (points computed for every tier; the script picks).

    ``value`` (the multiplier-weighted amount) may be given precomputed, as the vectorised backfill does.
    """
    if value is None:
        value = base_value(program, amount, lines, categories)
    payload = {
        "order_id": order_id,
        "amount": str(amount),
        "items": [(x.item_id, str(x.quantity), str(x.price)) for x in lines],
    }
    params = {
        "order_id": order_id,
        "cents": cents(amount),
        "expiry": expiry_epoch(program, now),
        "month": month_label(now),
        "bonus": program.first_purchase_bonus,
        "cap": program.cap_per_order,
        "points": points_per_tier(program, value, now),
        "thresholds": [t.threshold for t in program.tiers],
        "window": months_window(now, program.window_months),
        "reason": "order",
    }
    return _call(keys, "earn", customer_id, idem, payload, now, params)


def redeem_call(
    program: Program, keys: Keys, customer_id: str, reward_id: str, quantity: int, now: datetime, idem: str
) -> Call:
    """Return the ledger call of a redemption. Raises ``UnknownReward``."""
    reward = reward_of(program, reward_id)
    payload = {"reward_id": reward_id, "quantity": quantity}
    params = {
        "cost": reward.cost,
        "quantity": quantity,
        "reason": f"redeemed {quantity} x {reward.name}",
        "source": reward_id,
    }
    return _call(keys, "redeem", customer_id, idem, payload, now, params)


def reverse_call(
    keys: Keys, customer_id: str, order_id: str, returned: Decimal | None, now: datetime, idem: str
) -> Call:
    """Return the call reversing an order: all of it (``returned`` None) or the share ``returned`` of its amount."""
    payload = {"order_id": order_id, "returned": None if returned is None else str(returned)}
    # "all" says "the whole order" explicitly: a return worth 0 cents (a free item) must reverse nothing
    params = {
        "order_id": order_id,
        "all": returned is None,
        "cents": 0 if returned is None else cents(returned),
        "reason": "order returned",
    }
    return _call(keys, "reverse", customer_id, idem, payload, now, params)


def grant_call(
    program: Program,
    keys: Keys,
    customer_id: str,
    points: int,
    reason: str,
    now: datetime,
    idem: str,
    op: str = "grant",
    source: str = "",
) -> Call:
    """Return the call of a grant (points > 0) or an adjustment (``op='adjust'``, points of either sign)."""
    if op == "grant" and points <= 0:
        raise ConfigError(f"grant of {points} points for customer {customer_id!r}: a grant must be positive")
    payload = {"points": points, "reason": reason, "source": source}
    params = {"amount": points, "expiry": expiry_epoch(program, now), "reason": reason, "source": source}
    return _call(keys, op, customer_id, idem, payload, now, params)


def expire_call(keys: Keys, customer_id: str, now: datetime, program: Program | None = None) -> Call:
    """Return the call that expires a customer's lots due at ``now``; with ``program`` it also reviews the tier.

    Tier review (run at period end): the tier becomes the best one qualified by points earned in any window
    ending now or up to ``grace_months`` months ago (never above the tier held), so a downgrade waits out the
    whole grace period after the last qualifying window.
    """
    params: dict[str, Any] = {}
    if program is not None:
        params = {
            "thresholds": [t.threshold for t in program.tiers],
            "windows": [
                months_window(add_months(now, -k), program.window_months) for k in range(program.grace_months + 1)
            ],
        }
    return _call(keys, "expire", customer_id, "", {}, now, params)


def reservation_key(customer_id: str, idem: str) -> str:
    """Return the name a redemption's stock reservation goes by: ``<len(customer)>:<customer>:<key>``.

    Idempotency keys are per customer, so two customers may send the same key value; the customer is part of the
    name (length-prefixed, so no customer id / key pair can spell another's).
    """
    return f"{len(customer_id)}:{customer_id}:{idem}"


def parse_reservation(field: bytes | str) -> tuple[str, str] | None:
    """Return ``(customer_id, idempotency key)`` of a stock hash field ``res:<len>:<customer>:<key>``, else None."""
    text = field.decode() if isinstance(field, bytes) else field
    if not text.startswith(Fields.RESERVATION_PREFIX):
        return None
    size, sep, rest = text[len(Fields.RESERVATION_PREFIX) :].partition(":")
    if not sep or not size.isdigit() or len(rest) <= int(size) or rest[int(size)] != ":":
        return None  # not this layout (e.g. a reservation named before reservations were per customer)
    return rest[: int(size)], rest[int(size) + 1 :]


def stock_args(op: str, customer_id: str, idem: str, reward_id: str, quantity: int) -> list[str]:
    """Return the stock script's arguments (the payload hash binds the reservation to reward and quantity)."""
    return [
        op,
        reservation_key(customer_id, idem),
        payload_hash("redeem", {"reward_id": reward_id, "quantity": quantity}),
        str(quantity),
    ]


def reward_of(program: Program, reward_id: str):
    """Return the program's reward ``reward_id``. Raises ``UnknownReward``."""
    try:
        return program.rewards[reward_id]
    except KeyError:
        raise UnknownReward(f"unknown reward {reward_id!r}; the program offers {sorted(program.rewards)}") from None


def parse(answer: Sequence[Any], customer_id: str, idem: str) -> dict[str, Any]:
    """Turn a ledger script answer into ``{"entry", "balance", "debt", "tier", "replayed"}``. Raises domain errors."""
    status = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
    body = answer[1].decode() if isinstance(answer[1], bytes) else answer[1]
    if status in ("ok", "replay"):
        try:
            out = orjson.loads(body)
        except orjson.JSONDecodeError:
            out = json.loads(body)
        out["replayed"] = status == "replay"
        return out
    if status == "conflict":
        raise IdempotencyConflict(
            f"Idempotency-Key {idem!r} was already used with a different request for customer {customer_id!r}; "
            "use a new key"
        )
    if status == "insufficient":
        info = json.loads(body)
        raise InsufficientPoints(f"customer {customer_id!r} has {info['balance']} points; {info['needed']} needed")
    if status == "unknown_order":
        raise UnknownOrder(f"customer {customer_id!r} has no earned order with that id to reverse")
    if status == "duplicate_order":
        raise DuplicateOrder(
            f"the order already earned points for customer {customer_id!r} under another Idempotency-Key"
        )
    raise RuntimeError(f"unexpected ledger answer {status!r}")


def check_stock(status: Any, reward_id: str, idem: str) -> None:
    """Raise the domain error a stock reservation answer stands for."""
    status = status.decode() if isinstance(status, bytes) else status
    if status == "unknown":
        raise UnknownReward(
            f"reward {reward_id!r} has no stock record; run `centric loyalty backfill` or restart the service"
        )
    if status == "out_of_stock":
        raise OutOfStock(f"reward {reward_id!r} is out of stock")
    if status == "conflict":
        raise IdempotencyConflict(
            f"Idempotency-Key {idem!r} was already used with a different redemption; use a new key"
        )
