"""Offers for a customer (published decisions filtered live) and campaign audiences.

The published decisions come from the snapshot store (``app.state.store``, a ``SnapshotReader``) as typed
records: ``get_customer_offers(customer_id)`` and ``get_offer_audience(offer_id)`` answer ``OfferDecisions``,
``get_offer_catalog()`` an ``OfferCatalog`` (the offers of ``offers.json``). Live state (contacts, budgets) is
read from Redis here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import polars as pl
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from recsys.clock import utcnow
from recsys.exceptions import StoreUnavailable, UnknownOffer
from recsys.nba.audience import Audience, select_audience
from recsys.nba.exploration import Explorer, Shown, choose
from recsys.nba.policy import live_candidates, live_offers
from recsys.store.base import OfferCatalog, OfferDecisions
from recsys.store.keys import Fields, Keys
from serving.schemas.offers import AudienceMember, AudiencePublic, CustomerOffersPublic, OfferPublic


class OfferSource(Protocol):
    """What the snapshot store gives the offers service (the offer part of ``SnapshotReader``)."""

    async def get_customer_offers(self, customer_id: str) -> OfferDecisions: ...

    async def get_offer_catalog(self) -> OfferCatalog: ...

    async def get_offer_audience(self, offer_id: str) -> OfferDecisions: ...


async def catalog_by_id(source: OfferSource) -> dict[str, dict[str, Any]]:
    """Return the published offer catalog keyed by offer id."""
    return (await source.get_offer_catalog()).by_id()


async def customer_offers(
    redis: aioredis.Redis,
    keys: Keys,
    source: OfferSource,
    customer_id: str,
    *,
    channel: str,
    k: int,
    now: dt.datetime | None = None,
    explorer: Explorer | None = None,
) -> CustomerOffersPublic:
    """Return up to ``k`` offers for the customer on ``channel``, after contact policy, budgets and suppression.

    With an ``explorer`` whose policy for ``channel`` explores, the offers are chosen among every candidate still
    allowed (``recsys.nba.exploration``), each with its probability of being shown; otherwise (and without an
    explorer) they are the first ``k`` candidates, each with probability 1. A customer without decisions gets an
    empty list. Raises ``StoreUnavailable`` when Redis fails while reading live state (offers are never served
    without their budget check).
    """
    now = now or utcnow()
    published = await source.get_customer_offers(customer_id)
    version = published.version
    rows = [d for d in published.decisions if d.channel == channel]
    policy = explorer.policy(channel) if explorer is not None else None
    label = policy.label if policy is not None else "greedy"
    if not rows:
        return CustomerOffersPublic(customer_id=customer_id, version=version, offers=[], policy=label)
    catalog = await catalog_by_id(source)
    offer_ids = sorted({d.offer_id for d in rows})
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.nba_contacts(customer_id))
            for offer_id in offer_ids:
                pipe.hget(keys.nba_budget(offer_id), Fields.BUDGET_REDEMPTIONS)
            answers = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read offer budgets and contact state: {exc}") from exc
    redemptions = {oid: int(v or 0) for oid, v in zip(offer_ids, answers[1:])}
    if policy is None or policy.kind == "greedy":
        shown = [
            Shown(d, 1.0)
            for d in live_offers(rows, catalog, answers[0] or {}, redemptions, channel=channel, k=k, now=now)
        ]
    else:
        # every candidate the contact policy still allows; the channel's impressions cap bounds the slate's size
        candidates, slate = live_candidates(rows, catalog, answers[0] or {}, redemptions, channel=channel, k=k, now=now)
        assert explorer is not None
        shown = choose(candidates, slate, policy, explorer.rng)
    return CustomerOffersPublic(
        customer_id=customer_id,
        version=version,
        policy=label,
        offers=[
            OfferPublic(
                offer_id=s.decision.offer_id,
                expected_value=s.decision.expected_value,
                p_accept=s.decision.p_accept,
                reason=s.decision.reason,
                arm=s.decision.arm,
                p_shown=s.probability,
            )
            for s in shown
        ],
    )


async def campaign_audience(
    source: OfferSource, offer_id: str, *, budget: float, channel: str | None = None
) -> AudiencePublic:
    """Return the best customers for ``offer_id`` within ``budget`` redemptions, as in their decisions.

    Raises ``UnknownOffer`` when the offer is not in the published catalog.
    """
    audience = await select_campaign_audience(source, offer_id, budget=budget, channel=channel)
    return AudiencePublic(
        offer_id=offer_id,
        customers=[AudienceMember(**row) for row in audience.customers.iter_rows(named=True)],
        expected_redemptions=audience.expected_redemptions,
        expected_value=audience.expected_value,
    )


async def select_campaign_audience(
    source: OfferSource, offer_id: str, *, budget: float, channel: str | None = None
) -> Audience:
    """Return the audience of ``offer_id`` within ``budget`` from the published decisions (as ``centric campaign
    select`` does from the artifacts). Raises ``UnknownOffer`` when the offer is not in the published catalog.
    """
    if offer_id not in await catalog_by_id(source):
        raise UnknownOffer(f"offer {offer_id!r} is not in the published offer catalog")
    rows = (await source.get_offer_audience(offer_id)).decisions
    schema = {
        "customer_id": pl.String,
        "channel": pl.String,
        "offer_id": pl.String,
        "expected_value": pl.Float64,
        "p_accept": pl.Float64,
    }
    frame = pl.DataFrame(
        [(d.customer_id, d.channel, d.offer_id, d.expected_value, d.p_accept) for d in rows],
        schema=schema,
        orient="row",
    )
    return select_audience(frame, offer_id, budget, channel)
