"""Campaigns for the dashboard: each offer's live budget, impressions, redemptions and contact-policy suppressions,
and experiment arms with lift and 95 % confidence intervals.

Suppressions are counted with the serving policy itself (``recsys.nba.policy.live_offers``): a customer the
arbitration chose for an offer is *suppressed* when, with the budget left aside, the policy would not show
them the offer now (cooldown after a dismissal, suppression after a redemption, per-customer cap, channel
cap). Nothing is re-implemented here, so the page counts exactly what the service does.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import asdict
from datetime import datetime
from typing import Any

import polars as pl
from redis.exceptions import RedisError

from recsys.exceptions import StoreUnavailable
from recsys.nba.audience import Audience, write_csv
from recsys.nba.experiments import experiment_from_dict, report
from recsys.nba.policy import live_offers
from recsys.store.base import OfferDecision, SnapshotReader
from recsys.store.keys import Fields
from serving.services import offers as offers_service
from serving.services.events import decode_entry
from serving.services.loyalty import LoyaltyService

EVENTS_READ = 200_000  # newest stream entries read for experiment outcomes
CHUNK = 1000
ARM_PREFIX = Fields.arm_impressions("")  # impressions:<arm> fields of an offer's budget hash


async def _contacts(svc: LoyaltyService, customers: list[str]) -> dict[str, dict[Any, Any]]:
    out: dict[str, dict[Any, Any]] = {}
    try:
        for start in range(0, len(customers), CHUNK):
            pipe = svc.redis.pipeline(transaction=False)
            part = customers[start : start + CHUNK]
            for cid in part:
                pipe.hgetall(svc.keys.nba_contacts(cid))
            out.update(zip(part, await pipe.execute()))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read contact state: {exc}") from exc
    return out


def _reach(
    oid: str, offer: Any, rows: list[OfferDecision], contacts: dict[str, dict[Any, Any]], now: datetime
) -> tuple[set[str], set[str]]:
    """Return the customers chosen for the offer and those the contact policy lets see it now on some channel."""
    chosen: set[str] = set()
    reachable: set[str] = set()
    for row in rows:
        cid = row.customer_id
        chosen.add(cid)
        if live_offers([row], {oid: offer}, contacts.get(cid) or {}, {}, channel=row.channel, k=1, now=now):
            reachable.add(cid)
    return chosen, reachable


async def offer_table(store: SnapshotReader, svc: LoyaltyService, now: datetime) -> list[dict[str, Any]]:
    """Return one row per published offer: budget, used, remaining, impressions, redemptions, the customers the
    arbitration chose (``audience``) and how many of them the contact policy holds back on every chosen channel."""
    catalog = await offers_service.catalog_by_id(store)
    ids = sorted(catalog)
    try:
        pipe = svc.redis.pipeline(transaction=False)
        for oid in ids:
            pipe.hgetall(svc.keys.nba_budget(oid))
        budgets = dict(zip(ids, await pipe.execute()))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read offer budgets: {exc}") from exc
    audiences = {oid: (await store.get_offer_audience(oid)).decisions for oid in ids}
    people = sorted({d.customer_id for rows in audiences.values() for d in rows})
    contacts = await _contacts(svc, people)
    rows = []
    for oid in ids:
        offer = catalog[oid]
        raw = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in (budgets[oid] or {}).items()}
        redemptions, impressions = raw.get(Fields.BUDGET_REDEMPTIONS, 0), raw.get(Fields.BUDGET_IMPRESSIONS, 0)
        # one policy check per chosen customer and channel: CPU work, off the event loop
        chosen, reachable = await asyncio.to_thread(_reach, oid, offer, audiences[oid], contacts, now)
        budget = offer.get("max_redemptions")
        rows.append(
            {
                "offer_id": oid,
                "name": offer.get("name") or oid,
                "goal": offer.get("goal") or "",
                "channels": list(offer.get("channels") or []),
                "budget": budget,
                "used": redemptions,
                "remaining": None if budget is None else max(int(budget) - redemptions, 0),
                "used_pct": None if not budget else min(redemptions / int(budget), 1.0),
                "impressions": impressions,
                "arms": {k[len(ARM_PREFIX) :]: v for k, v in raw.items() if k.startswith(ARM_PREFIX)},
                "redemptions": redemptions,
                "audience": len(chosen),
                "suppressed": len(chosen - reachable),
            }
        )
    return rows


async def _stream(svc: LoyaltyService) -> list[Any]:
    try:
        rows: list[Any] = await svc.redis.xrevrange(svc.keys.events_stream(), count=EVENTS_READ)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read the event stream: {exc}") from exc
    return rows


def _purchases(rows: list[Any]) -> pl.DataFrame:
    data: dict[str, float] = {}
    for _, fields in rows:
        f = decode_entry(fields)
        if f.get("type") != "purchase" or not f.get("customer_id"):
            continue
        value = float(f.get("price") or 0) * float(f.get("quantity") or 1)
        data[f["customer_id"]] = data.get(f["customer_id"], 0.0) + value
    return pl.DataFrame(
        {"customer_id": list(data), "converted": [True] * len(data), "revenue": list(data.values())},
        schema={"customer_id": pl.String, "converted": pl.Boolean, "revenue": pl.Float64},
    )


def _reports(experiments: Any, population: list[str], rows: list[Any]) -> list[dict[str, Any]]:
    outcomes = _purchases(rows)
    out = []
    for raw in experiments:
        experiment = experiment_from_dict(raw, "published experiments")
        assignments = pl.DataFrame({"customer_id": population, "arm": experiment.assign(population)})
        holdouts = sorted(experiment.holdout_arms())
        control = holdouts[0] if holdouts else experiment.arms[-1].name
        present = set(assignments.get_column("arm").unique().to_list())
        if control not in present:
            continue
        arms = [asdict(r) for r in report(assignments, outcomes, control)]
        out.append({"id": experiment.id, "control": control, "events": outcomes.height, "arms": arms})
    return out


async def experiment_reports(experiments: Any, population: list[str], svc: LoyaltyService) -> list[dict[str, Any]]:
    """Return each experiment's arms with conversion (a purchase event) and revenue lift vs the holdout arm.

    ``population`` is everyone who could be assigned (intention to treat); arms come from the same hash as decide.
    Decoding up to ``EVENTS_READ`` events and hashing every member into an arm is CPU work: it runs in a thread,
    so the event loop keeps serving requests meanwhile.
    """
    if not experiments or not population:
        return []
    return await asyncio.to_thread(_reports, experiments, population, await _stream(svc))


def audience_csv(audience: Audience) -> bytes:
    """Return the audience as the CSV ``centric campaign select`` writes (same columns, same order, formulas
    neutralised the same way)."""
    buffer = io.BytesIO()
    write_csv(audience, buffer)
    return buffer.getvalue()
