"""The Redis a CLI command works on, opened once per command the same way everywhere."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys.settings import Settings
    from recsys.store.keys import Keys


@contextlib.contextmanager
def open_redis(settings: Settings | None = None) -> Iterator[tuple[Any, Keys, Settings]]:
    """Yield ``(client, keys, settings)``: a sync client (single server or cluster) on ``CENTRIC_REDIS_URL``, or on
    an embedded redis-server for the duration of the block when it is unset, with the keys of ``CENTRIC_ENV``.

    The client is closed on the way out. Raises ``StoreUnavailable`` when no redis-server can be found or started.
    """
    # imported here: the CLI starts without loading redis until a command needs it
    from recsys.settings import Settings
    from recsys.store.connection import sync_client
    from recsys.store.embedded import redis_url
    from recsys.store.keys import Keys

    settings = settings or Settings()
    with redis_url(settings.redis_url, settings.home, appendfsync=settings.appendfsync) as url:
        client = sync_client(url)
        try:
            yield client, Keys(settings.env), settings
        finally:
            client.close()
