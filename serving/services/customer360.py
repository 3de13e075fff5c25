"""One customer on one page: profile, purchases, loyalty standing and statement, recommendations, offers, events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import orjson
from redis.exceptions import RedisError

from recsys.analytics.bgnbd import BetaGeoModel
from recsys.analytics.btyd import PurchaseModel, model_from_dict
from recsys.exceptions import CentricError, StoreUnavailable, UnknownCustomer
from recsys.store.base import SnapshotReader
from serving.services import loyalty as loyalty_service
from serving.services import offers as offers_service
from serving.services import profiles as profiles_service
from serving.services import recommendations as recs_service
from serving.services.events import decode_entry
from serving.services.loyalty import LoyaltyService

EVENTS_SCANNED = 2000  # the newest stream entries searched for the customer's recent events
CURVE_POINTS = 27


def p_alive_curve(
    profile: dict[str, Any],
    bgnbd: dict[str, Any] | None,
    weeks: int = 52,
    *,
    clv_model: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Return P(alive) if the customer stays silent for 0..``weeks`` more time units: ``[{"weeks", "p_alive"}]``.

    Uses the snapshot's chosen CLV model (``clv_model``: ``{"name", "params"}`` from models.json), the one that
    computed the profile's ``p_alive``; snapshots from before the model choice have only BG/NBD parameters.
    Empty when the snapshot has neither or the profile lacks frequency/recency/T.
    """
    if any(profile.get(k) is None for k in ("frequency", "recency", "T")):
        return []
    model: PurchaseModel | BetaGeoModel
    if clv_model:
        model = model_from_dict(str(clv_model["name"]), clv_model["params"])
    elif bgnbd:
        model = BetaGeoModel.from_params(*(float(bgnbd[k]) for k in ("r", "alpha", "a", "b")))
    else:
        return []
    ahead = np.linspace(0, weeks, CURVE_POINTS)
    n = len(ahead)
    values = model.p_alive(
        np.full(n, float(profile["frequency"])), np.full(n, float(profile["recency"])), float(profile["T"]) + ahead
    )
    return [{"weeks": float(w), "p_alive": round(float(p), 4)} for w, p in zip(ahead, values)]


async def purchases_by_month(svc: LoyaltyService, customer_id: str) -> list[dict[str, Any]]:
    """Return the customer's orders known to the loyalty ledger per month: ``[{"month", "orders", "spend"}]``."""
    try:
        raw = await svc.redis.hgetall(svc.keys.loyalty_orders(customer_id))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read the customer's orders: {exc}") from exc
    months: dict[str, list[float]] = {}
    for blob in raw.values():
        order = orjson.loads(blob)
        month = str(order.get("month") or "")
        month = f"{month[:4]}-{month[4:6]}" if len(month) == 6 and month.isdigit() else month
        row = months.setdefault(month, [0, 0.0])
        row[0] += 1
        row[1] += (int(order.get("cents", 0)) - int(order.get("returned", 0) or 0)) / 100
    return [{"month": m, "orders": int(v[0]), "spend": round(v[1], 2)} for m, v in sorted(months.items())]


async def recent_events(svc: LoyaltyService, customer_id: str, limit: int = 20) -> list[dict[str, str]]:
    """Return the customer's events among the newest ``EVENTS_SCANNED`` of the stream, newest first."""
    try:
        rows = await svc.redis.xrevrange(svc.keys.events_stream(), count=EVENTS_SCANNED)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read the event stream: {exc}") from exc
    out = []
    for _, fields in rows:
        event = decode_entry(fields)
        if event.get("customer_id") == customer_id:
            out.append(event)
            if len(out) >= limit:
                break
    return out


async def customer_view(
    store: SnapshotReader,
    loyalty: LoyaltyService,
    customer_id: str,
    now: datetime,
    *,
    bgnbd: dict[str, Any] | None,
    clv_model: dict[str, Any] | None = None,
    statement_limit: int = 25,
) -> dict[str, Any]:
    """Return everything the customer-360 page shows. Raises ``UnknownCustomer`` when the snapshot and the
    ledger both do not know the customer."""
    try:
        profile = await profiles_service.profile(store, customer_id)
    except UnknownCustomer:
        profile = None
    account = await loyalty_service.account(loyalty, customer_id, now)
    statement = await loyalty_service.statement(loyalty, customer_id, 0, statement_limit)
    if profile is None and statement.total == 0:
        raise UnknownCustomer(
            f"customer {customer_id!r} has no profile in the active snapshot and no loyalty ledger; check the id"
        )
    recs = await recs_service.recommend(store, customer_id, k=10)
    table = await store.items()
    for item in recs["items"]:
        info = table.get(item["item_id"])
        item["name"] = info.name if info else None
        item["category"] = info.category if info else None
    decisions = (await store.get_customer_offers(customer_id)).decisions
    offers = []
    for channel in sorted({d.channel for d in decisions}):
        try:
            live = await offers_service.customer_offers(
                loyalty.redis, loyalty.keys, store, customer_id, channel=channel, k=5, now=now
            )
        except CentricError:
            continue
        offers += [{"channel": channel, **o.model_dump()} for o in live.offers]
    return {
        "customer_id": customer_id,
        "profile": profile,
        "curve": p_alive_curve(profile or {}, bgnbd, clv_model=clv_model),
        "loyalty": account,
        "statement": statement,
        "purchases": await purchases_by_month(loyalty, customer_id),
        "recommendations": recs,
        "offers": offers,
        "decided_offers": len(decisions),
        "events": await recent_events(loyalty, customer_id),
    }
