"""The live contact policy: filter a customer's published decisions by what has happened since.

Pure functions over plain data so the service (Redis) and tests (in memory) share one implementation.
State is what ``serving/services/offer_events.py`` records (field names: ``recsys.store.keys.Fields``):

* customer contact hash: ``imp:<channel>:<YYYYMMDD>`` impression counts per day, ``dis:<offer>`` epoch
  seconds of the last dismissal, ``red:<offer>`` epoch seconds of the last redemption, ``redn:<offer>``
  redemptions so far;
* offer budget hash: ``redemptions`` so far (spend = redemptions × the offer's cost, exact in cents).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from recsys.store.base import OfferDecision
from recsys.store.keys import Fields

DAY = 86_400


def period_fields(channel: str, now: dt.datetime, period_days: int) -> list[str]:
    """Fields of the last ``period_days`` days (today included) for ``channel``."""
    return [Fields.impressions(channel, now - dt.timedelta(days=d)) for d in range(max(period_days, 1))]


def _decode(state: Mapping[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
        for k, v in state.items()
    }


def _parse_time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def is_exhausted(offer: Mapping[str, Any], redemptions: int) -> bool:
    """Return whether the offer's live budget is used up: no further redemption fits under max redemptions or
    max spend (at ``cost`` each)."""
    max_red = offer.get("max_redemptions")
    if max_red is not None and redemptions >= int(max_red):
        return True
    max_spend = offer.get("max_spend")
    if max_spend is not None:
        cost_cents = int(Decimal(str(offer.get("cost", "0"))) * 100)
        return cost_cents > 0 and (redemptions + 1) * cost_cents > int(Decimal(str(max_spend)) * 100)
    return False


def live_offers(
    decisions: Sequence[OfferDecision],
    catalog: Mapping[str, Mapping[str, Any]],
    contact_state: Mapping[Any, Any],
    redemptions: Mapping[str, int],
    *,
    channel: str,
    k: int,
    now: dt.datetime,
) -> list[OfferDecision]:
    """Return at most ``k`` decisions of ``channel`` still allowed at ``now``, best rank first.

    Dropped: offers not in the catalog or outside their window, exhausted offers, offers dismissed within
    the cooldown, offers redeemed within the suppression window or up to their per-customer cap. The
    number returned is also capped by the impressions left on the channel in the current period.
    """
    allowed, slate = live_candidates(decisions, catalog, contact_state, redemptions, channel=channel, k=k, now=now)
    return allowed[:slate]


def live_candidates(
    decisions: Sequence[OfferDecision],
    catalog: Mapping[str, Mapping[str, Any]],
    contact_state: Mapping[Any, Any],
    redemptions: Mapping[str, int],
    *,
    channel: str,
    k: int,
    now: dt.datetime,
) -> tuple[list[OfferDecision], int]:
    """Return every decision of ``channel`` still allowed at ``now`` (best rank first, the rules of
    :func:`live_offers`) and the slate size left: ``k``, or fewer when the channel's impressions cap for the period
    is nearly used. :func:`live_offers` is the first ``slate`` of them; an exploring policy chooses its ``slate``
    among all of them (the cap bounds how many offers are shown, not which ones may be).
    """
    state = _decode(contact_state)
    rows = sorted((r for r in decisions if r.channel == channel), key=lambda r: (r.rank, r.offer_id))
    now_s = now.timestamp()
    kept: list[OfferDecision] = []
    remaining = k
    for row in rows:
        offer = catalog.get(row.offer_id)
        if offer is None:
            continue
        policy = offer.get("policy") or {}
        if kept == [] and remaining == k:
            cap = (policy.get("max_per_channel") or {}).get(channel)
            if cap is not None:
                used = sum(int(state.get(f, 0)) for f in period_fields(channel, now, int(policy.get("period_days", 7))))
                remaining = min(k, max(int(cap) - used, 0))
        start, end = _parse_time(offer.get("valid_from")), _parse_time(offer.get("valid_to"))
        if (start and now < start) or (end and now >= end):
            continue
        oid = str(offer.get("id"))
        if is_exhausted(offer, int(redemptions.get(oid, 0))):
            continue
        dismissed = state.get(Fields.dismissed(oid))
        if dismissed and now_s - float(dismissed) < int(policy.get("cooldown_days", 0)) * DAY:
            continue
        redeemed = state.get(Fields.redeemed(oid))
        if redeemed and now_s - float(redeemed) < int(policy.get("suppress_days", 0)) * DAY:
            continue
        limit = offer.get("max_per_customer")
        if limit is not None and int(state.get(Fields.redemptions(oid), 0)) >= int(limit):
            continue
        kept.append(row)
    return kept, remaining
