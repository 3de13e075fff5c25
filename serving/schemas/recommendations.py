"""Response and request shapes of recommendations, similar items and basket cross-sell."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas.common import ExternalId, ItemPublic, JsonNumber


class RecommendationsQuery(BaseModel):
    """Query parameters of ``GET /v1/customers/{customer_id}/recommendations`` (unknown ones: ``StrictQueryRoute``)."""

    k: int = Field(10, ge=1, le=100, description="How many items (1..100)")
    category: ExternalId | None = Field(None, description="Only items of this category")
    exclude: str | None = Field(None, max_length=4000, description="Comma-separated item ids to leave out")
    channel: str | None = Field(None, max_length=32, description="Calling channel (web, app, email…), echoed back")


class RecommendationsPublic(BaseModel):
    """Recommendations for one customer from snapshot ``version``."""

    customer_id: str
    version: str
    items: list[ItemPublic]
    channel: str | None = None
    degraded: bool = Field(False, description="True when Redis was unreachable and a cached fallback list was served")


class SimilarQuery(BaseModel):
    """Query parameters of ``GET /v1/items/{item_id}/similar``."""

    k: int = Field(10, ge=1, le=100, description="How many items (1..100)")


class SimilarPublic(BaseModel):
    """Items similar to ``item_id``."""

    item_id: str
    version: str
    items: list[ItemPublic]


class BasketCreate(BaseModel):
    """A cart: the items in it, and optionally who is shopping."""

    model_config = ConfigDict(extra="forbid")

    item_ids: list[str] = Field(min_length=1, max_length=100, description="External ids of the items in the cart")
    customer_id: ExternalId | None = None
    k: Annotated[int, JsonNumber] = Field(10, ge=1, le=100)
    exclude: list[str] = Field(default_factory=list, max_length=100)


class BasketPublic(BaseModel):
    """Cross-sell suggestions for a cart."""

    customer_id: str | None
    basket: list[str]
    version: str
    items: list[ItemPublic]
