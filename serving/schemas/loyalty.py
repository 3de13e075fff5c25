"""Schemas of the loyalty endpoints: account view, earn / redeem / reverse / grant requests and their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from serving.batch_limit import HARD_MAX, bounded
from serving.schemas.common import ExternalId, JsonNumber, decimal_amount


class RewardPublic(BaseModel):
    """A reward the customer's tier may redeem now."""

    reward_id: str
    name: str
    cost: int
    stock: int
    affordable: bool


class LoyaltyPublic(BaseModel):
    """Where a customer stands: balance, tier, progress to the next tier, points expiring soon, rewards."""

    customer_id: str
    balance: int
    debt: int
    tier: str
    next_tier: str | None
    points_to_next_tier: int
    progress_pct: float
    earned_in_window: int
    expiring_30d: int
    rewards: list[RewardPublic]


class OrderLine(BaseModel):
    """One line of an order (unit price in currency units)."""

    model_config = ConfigDict(extra="forbid")
    item_id: ExternalId
    quantity: decimal_amount(6, positive=True, description="Units bought, > 0 and at most 1,000,000")  # type: ignore[valid-type]
    price: decimal_amount(7, positive=False, description="Unit price, 0 to 10,000,000")  # type: ignore[valid-type]


class EarnCreate(BaseModel):
    """An order that earns points."""

    model_config = ConfigDict(extra="forbid")
    order_id: ExternalId
    amount: decimal_amount(8, positive=False, description="Order value, 0 to 100,000,000")  # type: ignore[valid-type]
    items: Annotated[list[OrderLine], bounded("order lines")] = Field(default_factory=list, max_length=HARD_MAX)


class RedeemCreate(BaseModel):
    """Redeem ``quantity`` of a reward."""

    model_config = ConfigDict(extra="forbid")
    reward_id: ExternalId
    quantity: Annotated[int, JsonNumber] = Field(default=1, ge=1, le=1000)


class ReverseCreate(BaseModel):
    """Reverse an order: all of it, or the returned ``items`` (their value sets the share reversed)."""

    model_config = ConfigDict(extra="forbid")
    order_id: ExternalId
    # omit ``items`` to reverse the whole order; an empty list would reverse nothing and is refused (422)
    items: Annotated[list[OrderLine] | None, bounded("order lines")] = Field(
        default=None, min_length=1, max_length=HARD_MAX
    )


class GrantLine(BaseModel):
    """Points granted to one customer."""

    model_config = ConfigDict(extra="forbid")
    customer_id: ExternalId
    points: Annotated[int, JsonNumber] = Field(gt=0, le=10_000_000)


class GrantCreate(BaseModel):
    """A bulk grant: the same reason for many customers."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=200)
    grants: Annotated[list[GrantLine], bounded("grant lines")] = Field(
        min_length=1, max_length=HARD_MAX, description="One line per customer (a customer listed twice: 409)"
    )


class LedgerResultPublic(BaseModel):
    """A write's answer: the ledger entry, the new balance, and whether this was a replay of an earlier request."""

    customer_id: str
    entry: dict[str, Any]
    balance: int
    debt: int
    tier: str
    replayed: bool


class GrantResultPublic(BaseModel):
    """A bulk grant's answers, one per customer, in request order."""

    results: list[LedgerResultPublic]


class StatementEntryPublic(BaseModel):
    """One line of a loyalty statement: an earn, redemption, reversal, expiry, grant or adjustment."""

    entry_id: str
    type: str
    amount: int = Field(description="Change of the balance in points (negative for redemptions, reversals, expiries).")
    at: datetime
    reason: str = ""
    source: str = Field(default="", description="The order id of an earn or reversal, the reward or grant source.")


class LoyaltyHistoryPublic(BaseModel):
    """A page of a customer's loyalty statement, newest first; ``next_offset`` and ``next_before`` are None on the
    last page. Pass ``next_before`` as ``before`` for the next page: unlike an offset it does not shift (and repeat an
    entry) when new entries arrive between two pages."""

    customer_id: str
    total: int
    offset: int
    limit: int
    next_offset: int | None
    next_before: int | None = Field(
        description="Cursor of the next (older) page: the number of this page's oldest entry; None on the last page."
    )
    entries: list[StatementEntryPublic]
