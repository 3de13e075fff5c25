"""``GET /v1/customers/{customer_id}/recommendations`` and ``POST /v1/recommendations/basket``.

Unknown query parameters are rejected with 422 (``StrictQueryRoute``): a typo such as ``?limit=5`` must not be
silently ignored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from serving.auth import require_scope
from serving.deps import ServingDep
from serving.params import CustomerId
from serving.responses import OrjsonResponse
from serving.routing import StrictQueryRoute
from serving.schemas.common import ErrorPublic
from serving.schemas.recommendations import BasketCreate, BasketPublic, RecommendationsPublic, RecommendationsQuery
from serving.services import items as items_service
from serving.services import recommendations as service

router = APIRouter(
    prefix="/v1",
    tags=["recommendations"],
    route_class=StrictQueryRoute,
    responses={
        401: {"model": ErrorPublic},
        403: {"model": ErrorPublic},
        422: {"model": ErrorPublic},
        503: {"model": ErrorPublic},
    },
)


@router.get(
    "/customers/{customer_id}/recommendations",
    response_model=RecommendationsPublic,
    dependencies=[Depends(require_scope("read"))],
)
async def get_recommendations(
    serving: ServingDep, customer_id: CustomerId, query: Annotated[RecommendationsQuery, Query()]
) -> OrjsonResponse:
    """Top-k items for the customer from the active snapshot, after real-time filters; a fallback for unknown
    customers."""
    body = await service.recommend_query(
        serving.store, customer_id, query, foldin=serving.foldin, metrics=serving.metrics
    )
    return OrjsonResponse(body)


@router.post(
    "/recommendations/basket",
    response_model=BasketPublic,
    dependencies=[Depends(require_scope("read"))],
)
async def post_basket(serving: ServingDep, basket: BasketCreate) -> OrjsonResponse:
    """Cross-sell for a cart: items often bought with the cart's items, cart items and ``exclude`` left out."""
    body = await items_service.basket(
        serving.store,
        basket.item_ids,
        k=basket.k,
        customer_id=basket.customer_id,
        exclude=basket.exclude,
        foldin=serving.foldin,
    )
    return OrjsonResponse(body)
