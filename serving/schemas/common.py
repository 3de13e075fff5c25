"""Shapes shared by several endpoints."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

EXTERNAL_ID_MAX = 128  # customer, item, order and reward ids as the shop knows them
IDEMPOTENCY_KEY_MAX = 200

# An external id (customer, item, order, reward, offer) in a body or query model.
ExternalId = Annotated[str, Field(min_length=1, max_length=EXTERNAL_ID_MAX)]


def _number_only(value: Any) -> Any:
    # JSON Schema's integer/number: 78 and 78.0 are both integers, but "78" (a string) and true are not
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


# A number in a JSON body exactly as its schema says (pydantic's lax mode would also take "78" and true).
JsonNumber = BeforeValidator(_number_only)


def decimal_amount(max_digits: int, *, positive: bool, description: str) -> Any:
    """A ``Decimal`` field in ``[0, 10**max_digits]`` (or ``(0, …]``): a JSON number, or a string of plain digits.

    The OpenAPI document states exactly what is accepted — a number with ``minimum``/``exclusiveMinimum`` and
    ``maximum``, or a string matching ``pattern`` — and the server checks the same pattern before converting, so a
    string the schema allows is never refused (``""``, ``"1e5"`` and ``" 5"`` are refused by both).
    """
    top = 10**max_digits
    integer = rf"[1-9]\d{{0,{max_digits - 1}}}"
    small = r"0\.\d*[1-9]\d*" if positive else r"0(?:\.\d+)?"
    pattern = rf"^(?:{small}|{integer}(?:\.\d+)?|{top}(?:\.0+)?)$"
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError(f"must be a number, or a string of digits with an optional decimal point, up to {top:,}")
        return value

    number: dict[str, Any] = {"type": "number", "maximum": top}
    number["exclusiveMinimum" if positive else "minimum"] = 0
    bounds: dict[str, Any] = {"gt": 0} if positive else {"ge": 0}
    return Annotated[
        Decimal,
        BeforeValidator(check),
        Field(le=top, description=description, **bounds),
        WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description}),
    ]


class ItemPublic(BaseModel):
    """One recommended item: external id, score, where it came from and why."""

    item_id: str
    score: float
    source: str = Field(description="personalized | buy_again | similar | cross_sell | fallback | …")
    reason: str


class ProblemPublic(BaseModel):
    """One reason a request was invalid (in a 422 answer)."""

    location: str = Field(description="Where: `body field items.0.price`, `query parameter k`, …")
    message: str
    input: Any = Field(None, description="The value that was refused (integers beyond 64 bits as strings)")


class ErrorPublic(BaseModel):
    """Every error response: 4xx and 5xx alike (``serving.errors``)."""

    detail: str = Field(description="What went wrong and what to do about it")
    code: str = Field(
        description="Machine-readable error code, e.g. unknown_customer, validation_error, rate_limited, "
        "store_unavailable, missing_api_key, body_too_large"
    )
    problems: list[ProblemPublic] | None = Field(None, description="422 only: each invalid field and why")
