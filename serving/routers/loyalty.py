"""Loyalty endpoints: a customer's standing, and the idempotent writes (earn, redeem, reverse, bulk grant)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from serving.auth import require_scope
from serving.params import CustomerId, IdempotencyKey
from serving.routing import StrictQueryRoute
from serving.schemas.loyalty import (
    EarnCreate,
    GrantCreate,
    GrantResultPublic,
    LedgerResultPublic,
    LoyaltyHistoryPublic,
    LoyaltyPublic,
    RedeemCreate,
    ReverseCreate,
)
from serving.services import loyalty as service

router = APIRouter(prefix="/v1", tags=["loyalty"], route_class=StrictQueryRoute)

LoyaltyDep = Annotated[service.LoyaltyService, Depends(service.get_loyalty)]


@router.get(
    "/customers/{customer_id}/loyalty", response_model=LoyaltyPublic, dependencies=[Depends(require_scope("read"))]
)
async def get_loyalty(loyalty: LoyaltyDep, customer_id: CustomerId) -> LoyaltyPublic:
    """Balance, tier, progress to the next tier, points expiring in 30 days, and the rewards this tier may redeem."""
    return await service.account(loyalty, customer_id, service.utcnow())


@router.get(
    "/customers/{customer_id}/loyalty/history",
    response_model=LoyaltyHistoryPublic,
    dependencies=[Depends(require_scope("read"))],
)
async def get_loyalty_history(
    loyalty: LoyaltyDep,
    customer_id: CustomerId,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Entries to skip, newest first.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="Entries per page.")] = 50,
    before: Annotated[
        int | None,
        Query(ge=1, le=2**31, description="Only entries older than this cursor: the `next_before` of the last page."),
    ] = None,
) -> LoyaltyHistoryPublic:
    """The loyalty statement, newest first: earns, redemptions, reversals, expiries, grants; paginated by the
    `next_before` cursor (stable while new entries arrive) or by offset."""
    return await service.statement(loyalty, customer_id, offset, limit, before)


@router.post(
    "/customers/{customer_id}/loyalty/earn",
    response_model=LedgerResultPublic,
    dependencies=[Depends(require_scope("write"))],
)
async def earn(
    loyalty: LoyaltyDep, customer_id: CustomerId, body: EarnCreate, key: IdempotencyKey
) -> LedgerResultPublic:
    """Earn points for an order; answers the ledger entry and the new balance."""
    return await service.earn(loyalty, customer_id, body, key, service.utcnow())


@router.post(
    "/customers/{customer_id}/loyalty/redeem",
    response_model=LedgerResultPublic,
    dependencies=[Depends(require_scope("write"))],
)
async def redeem(
    loyalty: LoyaltyDep, customer_id: CustomerId, body: RedeemCreate, key: IdempotencyKey
) -> LedgerResultPublic:
    """Redeem a reward: 409 insufficient_points / out_of_stock, 404 unknown_reward."""
    return await service.redeem(loyalty, customer_id, body.reward_id, body.quantity, key, service.utcnow())


@router.post(
    "/customers/{customer_id}/loyalty/reverse",
    response_model=LedgerResultPublic,
    dependencies=[Depends(require_scope("write"))],
)
async def reverse(
    loyalty: LoyaltyDep, customer_id: CustomerId, body: ReverseCreate, key: IdempotencyKey
) -> LedgerResultPublic:
    """Reverse an order (or the returned items): never below zero; the shortfall becomes debt."""
    return await service.reverse(loyalty, customer_id, body.order_id, body.items, key, service.utcnow())


@router.post("/loyalty/grants", response_model=GrantResultPublic, dependencies=[Depends(require_scope("admin"))])
async def grants(loyalty: LoyaltyDep, body: GrantCreate, key: IdempotencyKey) -> GrantResultPublic:
    """Grant points to many customers at once (admin)."""
    results = await service.grant(
        loyalty, [(g.customer_id, g.points) for g in body.grants], body.reason, key, service.utcnow()
    )
    return GrantResultPublic(results=results)
