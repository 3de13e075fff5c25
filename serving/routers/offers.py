"""``GET /v1/customers/{customer_id}/offers``: the next best offers for one customer and channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from serving.auth import require_scope
from serving.deps import ExplorerDep, KeysDep, RedisDep, StoreDep
from serving.params import CustomerId
from serving.routing import StrictQueryRoute
from serving.schemas.offers import CustomerOffersPublic
from serving.services import offers as service

router = APIRouter(prefix="/v1", tags=["offers"], route_class=StrictQueryRoute)


@router.get(
    "/customers/{customer_id}/offers",
    response_model=CustomerOffersPublic,
    dependencies=[Depends(require_scope("read"))],
)
async def get_customer_offers(
    redis: RedisDep,
    keys: KeysDep,
    store: StoreDep,
    explorer: ExplorerDep,
    customer_id: CustomerId,
    channel: Annotated[str, Query(pattern=r"^(web|app|email|push)$")] = "app",
    k: Annotated[int, Query(ge=1, le=20)] = 3,
) -> CustomerOffersPublic:
    """Ranked offers with expected value, P(accept), reason and experiment arm, after live contact policy and
    budgets; with exploration on for the channel, each offer's probability of being shown (``p_shown``)."""
    return await service.customer_offers(redis, keys, store, customer_id, channel=channel, k=k, explorer=explorer)
