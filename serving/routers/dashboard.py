"""``GET /v1/dashboard/overview`` and ``GET /v1/dashboard/loyalty``: the aggregates behind the dashboard's pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from recsys.clock import utcnow
from serving.auth import require_scope
from serving.deps import StoreDep
from serving.routing import StrictQueryRoute
from serving.schemas.dashboard import LoyaltyFiguresPublic, OverviewPublic, as_loyalty_figures
from serving.services import dashboard as service
from serving.services import loyalty as loyalty_service

router = APIRouter(prefix="/v1", tags=["dashboard"], route_class=StrictQueryRoute)
LoyaltyDep = Annotated[loyalty_service.LoyaltyService, Depends(loyalty_service.get_loyalty)]


async def get_cache(request: Request) -> service.DashboardCache:
    """Return the app's dashboard cache, shared with the web UI."""
    return service.cache_of(request.app)


CacheDep = Annotated[service.DashboardCache, Depends(get_cache)]


@router.get("/dashboard/overview", response_model=OverviewPublic, dependencies=[Depends(require_scope("read"))])
async def overview(request: Request, store: StoreDep, loyalty: LoyaltyDep, cache: CacheDep) -> OverviewPublic:
    """Snapshot (version, age, customers, revenue, RFM grid, lifecycle funnel, CLV histogram, P(alive) map),
    loyalty (members per tier, points liability, points expiring in 30 days; at most 15 s old) and the last runs of
    `centric pipeline` (from their run reports, newest first)."""
    pipeline_dir = service.pipeline_dir_of(request.app.state.settings)
    return OverviewPublic.model_validate(await service.overview(store, loyalty, cache, utcnow(), pipeline_dir))


@router.get("/dashboard/loyalty", response_model=LoyaltyFiguresPublic, dependencies=[Depends(require_scope("read"))])
async def loyalty_figures(loyalty: LoyaltyDep, cache: CacheDep) -> LoyaltyFiguresPublic:
    """The points liability and flow per month (last 24 months), tier upgrades and downgrades per month (replayed
    from the ledger statements), and members per tier; the monthly figures are at most 5 min old."""
    now = utcnow()
    summary = await service.cached_summary(cache, loyalty, now)
    return as_loyalty_figures(summary, await service.cached_history(cache, loyalty, now))
