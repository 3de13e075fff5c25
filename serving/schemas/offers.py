"""Schemas of the offers and campaign-audience endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from serving.schemas.common import JsonNumber


class OfferPublic(BaseModel):
    """One offer for a customer, with where it came from."""

    offer_id: str
    expected_value: float
    p_accept: float
    reason: str
    arm: str
    p_shown: float = Field(
        1.0,
        description="Probability that the channel's policy showed this offer (1 without exploration); log it "
        "with the impression, with `policy` and `version`",
    )


class CustomerOffersPublic(BaseModel):
    """Ranked offers for one customer on one channel."""

    customer_id: str
    version: str | None
    offers: list[OfferPublic]
    policy: str = Field("greedy", description="The exploration policy that chose the offers (greedy: none)")


class AudienceCreate(BaseModel):
    """Ask for a campaign audience: ``budget`` = redemptions the campaign can pay for."""

    budget: Annotated[float, JsonNumber] = Field(ge=0, le=1e9)
    channel: str | None = Field(default=None, pattern=r"^(web|app|email|push)$")


class AudienceMember(BaseModel):
    """One customer of an audience, with the same numbers as in their own decisions."""

    customer_id: str
    expected_value: float
    p_accept: float


class AudiencePublic(BaseModel):
    """The best customers for a campaign and what they are expected to bring."""

    offer_id: str
    customers: list[AudienceMember]
    expected_redemptions: float
    expected_value: float
