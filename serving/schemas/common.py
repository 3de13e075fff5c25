"""Shapes shared by several endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

EXTERNAL_ID_MAX = 128  # customer, item, order and reward ids as the shop knows them
IDEMPOTENCY_KEY_MAX = 200

# An external id (customer, item, order, reward, offer) in a body or query model.
ExternalId = Annotated[str, Field(min_length=1, max_length=EXTERNAL_ID_MAX)]


class ItemPublic(BaseModel):
    """One recommended item: external id, score, where it came from and why."""

    item_id: str
    score: float
    source: str = Field(description="personalized | buy_again | similar | cross_sell | fallback | …")
    reason: str


class ErrorPublic(BaseModel):
    """Every error response."""

    detail: str = Field(description="What went wrong and what to do about it")
    code: str = Field(description="Machine-readable error code, e.g. unknown_customer, validation_error")
