"""``POST /v1/campaigns/{offer_id}/audience``: the best customers for a campaign within a budget."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from serving.auth import require_scope
from serving.deps import StoreDep
from serving.routing import StrictQueryRoute
from serving.schemas.offers import AudienceCreate, AudiencePublic
from serving.services import offers as service

router = APIRouter(prefix="/v1", tags=["campaigns"], route_class=StrictQueryRoute)


@router.post(
    "/campaigns/{offer_id}/audience",
    response_model=AudiencePublic,
    dependencies=[Depends(require_scope("admin"))],
)
async def create_audience(
    store: StoreDep,
    offer_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: AudienceCreate,
) -> AudiencePublic:
    """Customers assigned this offer by the arbitration, best expected value first, within ``budget`` redemptions."""
    return await service.campaign_audience(store, offer_id, budget=body.budget, channel=body.channel)
