"""``GET /v1/items/{item_id}/similar``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from serving.auth import require_scope
from serving.deps import StoreDep
from serving.params import ItemId
from serving.responses import OrjsonResponse
from serving.routing import StrictQueryRoute
from serving.schemas.common import ErrorPublic
from serving.schemas.recommendations import SimilarPublic, SimilarQuery
from serving.services import items as service

router = APIRouter(
    prefix="/v1",
    route_class=StrictQueryRoute,
    tags=["items"],
    responses={401: {"model": ErrorPublic}, 404: {"model": ErrorPublic}, 422: {"model": ErrorPublic}},
)


@router.get("/items/{item_id}/similar", response_model=SimilarPublic, dependencies=[Depends(require_scope("read"))])
async def get_similar(
    store: StoreDep,
    item_id: ItemId,
    query: Annotated[SimilarQuery, Query()],
) -> OrjsonResponse:
    """Items often bought by the same customers, in stock; 404 for an item the snapshot does not know."""
    return OrjsonResponse(await service.similar(store, item_id, k=query.k))
