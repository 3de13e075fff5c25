"""The customer-360 record."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ProfilePublic(BaseModel):
    """Segment, lifecycle stage, value and risk of one customer; every published profile column is included."""

    model_config = ConfigDict(extra="allow")

    customer_id: str
    version: str
    segment: str | None = None
    lifecycle: str | None = None
    clv: float | None = None
    p_alive: float | None = None
    recent_purchases: int = 0
