"""Offer events (impression, dismiss, redeem) → contact counters and budgets in Redis.

Each key is updated by one script call (``recsys/store/lua/hash_update.lua``), so atomically: the customer's
contact hash (tagged by customer) and the offer's budget hash (tagged by offer) live in different cluster slots,
so they are two atomic units rather than one; no reader needs both at the same instant. Counters never go
half-applied: a failed call raises ``StoreUnavailable`` and the caller (``POST /v1/events``) reports the error.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recsys.clock import utcnow
from recsys.exceptions import StoreUnavailable
from recsys.store import scripts
from recsys.store.keys import Fields, Keys

OFFER_EVENT_TYPES = ("impression", "dismiss", "redeem")
# Contact state outlives every policy window we expect (cooldown, suppression, period); refreshed on write.
CONTACT_TTL_S = 400 * 86_400


def _when(event: dict[str, Any]) -> dt.datetime:
    value = event.get("timestamp")
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return utcnow()


def plan_offer_events(keys: Keys, events: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, Any]]]:
    """Return, per Redis key, the operations (``incr`` / ``max`` a hash field, ``expire``) the events imply.

    ``max`` keeps the latest time: a late event with an older timestamp must not end a cooldown or suppression.

    Events without ``offer_id`` or of other types are ignored (they are not offer events).
    """
    ops: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
    for event in events:
        kind, offer_id, customer_id = event.get("type"), event.get("offer_id"), event.get("customer_id")
        if kind not in OFFER_EVENT_TYPES or not offer_id or not customer_id:
            continue
        when = _when(event)
        contact, budget = keys.nba_contacts(str(customer_id)), keys.nba_budget(str(offer_id))
        if kind == "impression":
            ops[contact].append(("incr", Fields.impressions(str(event.get("channel") or "app"), when), 1))
            ops[budget].append(("incr", Fields.BUDGET_IMPRESSIONS, 1))
            if event.get("arm"):
                # the arm shown travels with the impression; counting it per offer lets a report check exposure per arm
                ops[budget].append(("incr", Fields.arm_impressions(str(event["arm"])), 1))
        elif kind == "dismiss":
            ops[contact].append(("max", Fields.dismissed(str(offer_id)), int(when.timestamp())))
        else:
            ops[contact].append(("max", Fields.redeemed(str(offer_id)), int(when.timestamp())))
            ops[contact].append(("incr", Fields.redemptions(str(offer_id)), 1))
            ops[budget].append(("incr", Fields.BUDGET_REDEMPTIONS, 1))
        if ("expire", "", CONTACT_TTL_S) not in ops[contact]:
            ops[contact].append(("expire", "", CONTACT_TTL_S))
    return ops


async def apply_offer_events(
    redis: aioredis.Redis,
    keys: Keys,
    events: list[dict[str, Any]],
    *,
    progress: str | None = None,
    done: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Apply impressions, dismissals and redemptions; each key's changes commit atomically (one script call).

    With ``progress`` (a keyed batch's hash), keys named ``k:<key>`` in ``done`` are skipped and each key is
    marked there once its transaction committed. Raises ``StoreUnavailable`` when Redis cannot be reached.
    """
    try:
        for key, key_ops in plan_offer_events(keys, events).items():
            if Fields.batch_key_done(key) in done:
                continue
            # one script per key (``lua/hash_update.lua``): all of its changes apply together or not at all
            await scripts.arun(redis, scripts.HASH_UPDATE, [key], [x for change in key_ops for x in change])
            if progress:
                await redis.hset(progress, Fields.batch_key_done(key), 1)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot record offer events: {exc}") from exc
