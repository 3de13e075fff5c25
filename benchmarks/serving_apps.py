"""App factories for ``bench_serving.py`` (uvicorn imports them by name in each worker)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from fastapi import FastAPI
from starlette.responses import Response

REFERENCE_KEY = "bench:reference:1kb"


def create_reference_app() -> FastAPI:
    """(a) The reference: a minimal FastAPI endpoint doing one Redis GET of a 1 KB value."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(os.environ["CENTRIC_REDIS_URL"])
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ref")
    async def ref() -> Response:
        value = await app.state.redis.get(REFERENCE_KEY)
        return Response(value, media_type="application/octet-stream")

    return app


def create_app_default_gc() -> FastAPI:
    """Centric with Python's default GC settings (for the with/without GC tuning comparison)."""
    from serving.app import create_app

    return create_app(gc_tuning=False)
