"""Events posted by the shop and apps."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys.nba.offers import CHANNELS
from serving.batch_limit import HARD_MAX, bounded
from serving.schemas.common import ExternalId, JsonNumber

EventType = Literal["view", "add_to_cart", "purchase", "return", "impression", "click", "dismiss", "redeem"]
MAX_EVENTS = HARD_MAX


def _needs(*fields: str) -> dict[str, Any]:
    return {"required": list(fields), "properties": {f: {"type": "string"} for f in fields}}


# The rules of ``EventCreate._needs_target`` as JSON Schema, so the OpenAPI document states them (if/then).
TARGET_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"type": {"enum": ["purchase", "return", "view", "add_to_cart"]}}},
            "then": _needs("item_id"),
        },
        {"if": {"properties": {"type": {"enum": ["dismiss", "redeem"]}}}, "then": _needs("offer_id")},
        {
            "if": {"properties": {"type": {"enum": ["impression", "click"]}}},
            "then": {"anyOf": [_needs("item_id"), _needs("offer_id")]},
        },
        {"if": _needs("offer_id", "channel"), "then": {"properties": {"channel": {"enum": list(CHANNELS)}}}},
    ]
}


class EventCreate(BaseModel):
    """One event. Purchases, returns, views, carts and clicks name an ``item_id``; offer events an ``offer_id``.

    ``order_id`` groups purchase lines into an order (an order sent twice counts once in the history); a return
    names the order it returns from when known.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=TARGET_RULES)

    type: EventType
    customer_id: ExternalId
    item_id: ExternalId | None = None
    offer_id: ExternalId | None = None
    order_id: ExternalId | None = None
    channel: str | None = Field(None, max_length=32)
    # "2" (a string) is not the number the schema says; a timestamp is an ISO 8601 string, not epoch seconds
    quantity: Annotated[float | None, JsonNumber] = Field(None, gt=0, allow_inf_nan=False)
    price: Annotated[float | None, JsonNumber] = Field(None, ge=0, allow_inf_nan=False)
    timestamp: dt.datetime | None = Field(None, description="ISO 8601; without a zone it is taken as UTC; default: now")
    arm: str | None = Field(None, max_length=64)
    # what an impression logs for off-policy evaluation: echo them from the offers answer that showed the offer
    p_shown: float | None = Field(
        None, gt=0, le=1, allow_inf_nan=False, description="impression: the offer's `p_shown` in the offers answer"
    )
    policy: str | None = Field(None, max_length=64, description="impression: the answer's exploration `policy`")
    version: str | None = Field(None, max_length=64, description="impression: the answer's snapshot `version`")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str | dt.datetime):
            raise ValueError("must be an ISO 8601 date-time string, e.g. 2026-12-01T10:30:00Z")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        try:
            return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(f"timestamp {value.isoformat()} is outside the range of UTC datetimes") from None

    @field_validator("customer_id", "item_id", "offer_id", "order_id", "channel", "arm", "policy", "version")
    @classmethod
    def _utf8(cls, value: str | None) -> str | None:
        # JSON may carry lone surrogates ("\ud800"), which no UTF-8 store can hold
        if value is not None:
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
        return value

    @model_validator(mode="after")
    def _needs_target(self) -> EventCreate:
        if self.type in ("purchase", "return", "view", "add_to_cart") and self.item_id is None:
            raise ValueError(f"a {self.type} event needs item_id")
        if self.type in ("dismiss", "redeem") and self.offer_id is None:
            raise ValueError(f"a {self.type} event needs offer_id")
        if self.type in ("impression", "click") and self.item_id is None and self.offer_id is None:
            raise ValueError(f"a {self.type} event needs item_id or offer_id")
        if self.offer_id is not None and self.channel is not None and self.channel not in CHANNELS:
            # contact caps are counted per channel: an unknown spelling ("App") would never be counted
            raise ValueError(f"channel {self.channel!r} is not an offer channel; use one of {list(CHANNELS)}")
        return self


class EventsCreate(BaseModel):
    """A batch of up to 1000 events."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventCreate], bounded("events")] = Field(min_length=1, max_length=MAX_EVENTS)


class EventsAccepted(BaseModel):
    """How many events were recorded."""

    accepted: int
