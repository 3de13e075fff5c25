"""Shapes shared by several endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
