"""Post events the way ``POST /v1/events`` does, without the HTTP layer (shared by the events integration tests)."""

from __future__ import annotations

import asyncio
from typing import Any

from recsys.store.keys import Keys
from serving.services import events as events_service
from tests.helpers.async_redis import with_client


class NoPurchaseStore:
    """A snapshot store that ignores purchases (the tests here look only at the event stream)."""

    async def record_purchases(self, purchases: list) -> None:
        return None


def post_events(redis_url: str, keys: Keys, events: list[dict], **kwargs: Any) -> int:
    """Return what ``record_events`` answers for ``events`` on a fresh client (``kwargs``: its options)."""

    async def go(client: Any) -> int:
        return await events_service.record_events(client, keys, NoPurchaseStore(), events, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(with_client(redis_url, go))
