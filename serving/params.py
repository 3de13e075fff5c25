"""Path and header parameters shared by the routers, each defined once (limits from ``serving.schemas.common``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path

from serving.schemas.common import EXTERNAL_ID_MAX, IDEMPOTENCY_KEY_MAX

CustomerId = Annotated[str, Path(min_length=1, max_length=EXTERNAL_ID_MAX, description="External customer id")]
ItemId = Annotated[str, Path(min_length=1, max_length=EXTERNAL_ID_MAX, description="External item id")]


def idempotency_header(description: str) -> Any:
    """Return the ``Idempotency-Key`` header parameter, with the description of the endpoint's use of it."""
    return Header(alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX, description=description)


IdempotencyKey = Annotated[
    str, idempotency_header("Required on writes: a retry with the same key has no second effect.")
]
OptionalIdempotencyKey = Annotated[
    str | None,
    idempotency_header(
        "Optional. Retrying a batch with the same key (e.g. after a 503) "
        "applies only what the first try did not; reused for other events: 409."
    ),
]
