"""``GET /v1/dashboard/overview``: the aggregates behind the dashboard's overview page, as JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from recsys.clock import utcnow
from serving.auth import require_scope
from serving.deps import StoreDep
from serving.routing import StrictQueryRoute
from serving.services import dashboard as service
from serving.services import loyalty as loyalty_service

router = APIRouter(prefix="/v1", tags=["dashboard"], route_class=StrictQueryRoute)
LoyaltyDep = Annotated[loyalty_service.LoyaltyService, Depends(loyalty_service.get_loyalty)]


async def get_cache(request: Request) -> service.DashboardCache:
    """Return the app's dashboard cache, shared with the web UI."""
    return service.cache_of(request.app)


@router.get("/dashboard/overview", dependencies=[Depends(require_scope("read"))])
async def overview(
    request: Request,
    store: StoreDep,
    loyalty: LoyaltyDep,
    cache: Annotated[service.DashboardCache, Depends(get_cache)],
) -> dict[str, Any]:
    """Snapshot (version, age, customers, revenue, RFM grid, lifecycle funnel, CLV histogram, P(alive) map),
    loyalty (members per tier, points liability, points expiring in 30 days; at most 15 s old) and the last runs of
    `centric pipeline` (from their run reports, newest first)."""
    pipeline_dir = service.pipeline_dir_of(request.app.state.settings)
    return await service.overview(store, loyalty, cache, utcnow(), pipeline_dir)
