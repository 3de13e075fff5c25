"""``GET /v1/customers/{customer_id}/profile``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.auth import require_scope
from serving.deps import StoreDep
from serving.params import CustomerId
from serving.responses import OrjsonResponse
from serving.routing import StrictQueryRoute
from serving.schemas.common import ErrorPublic
from serving.schemas.profiles import ProfilePublic
from serving.services import profiles as service

router = APIRouter(
    prefix="/v1",
    route_class=StrictQueryRoute,
    tags=["profiles"],
    responses={401: {"model": ErrorPublic}, 404: {"model": ErrorPublic}},
)


@router.get(
    "/customers/{customer_id}/profile", response_model=ProfilePublic, dependencies=[Depends(require_scope("read"))]
)
async def get_profile(store: StoreDep, customer_id: CustomerId) -> OrjsonResponse:
    """The customer-360 record: segment, lifecycle stage, CLV, P(alive), RFM scores, top categories."""
    return OrjsonResponse(await service.profile(store, customer_id))
