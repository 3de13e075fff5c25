"""The per-request batch limit: how many events, order lines or grant lines one request may carry.

The schemas bound every list at ``HARD_MAX`` (1000), which the OpenAPI document states. A deployment may lower it
(``CENTRIC_MAX_BATCH``): the request guard sets the limit of the running service for each request, and the
schemas' list validators (``bounded``) refuse a longer list with ``BatchTooLarge`` (413), in the routed API and in
the hot write path alike, since both validate the body with the same schema.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from pydantic import AfterValidator

from recsys.exceptions import BatchTooLarge

HARD_MAX = 1000

_limit: ContextVar[int] = ContextVar("centric_max_batch", default=HARD_MAX)


def set_limit(limit: int) -> Any:
    """Set the batch limit for the current request's context; return the token that ``reset`` takes."""
    return _limit.set(limit)


def reset(token: Any) -> None:
    """Restore the limit that was in force before ``set_limit``."""
    _limit.reset(token)


def bounded(what: str) -> AfterValidator:
    """Return a validator that refuses a list longer than the current batch limit with ``BatchTooLarge``."""

    def check(values: Any) -> Any:
        limit = _limit.get()
        if values is not None and len(values) > limit:
            raise BatchTooLarge(
                f"{len(values):,} {what} in one request; this service takes at most {limit:,} "
                "(CENTRIC_MAX_BATCH): split the request"
            )
        return values

    return AfterValidator(check)
