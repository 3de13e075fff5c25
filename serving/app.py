"""The FastAPI application. ``create_app()`` builds it; clients are made in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from redis.exceptions import RedisError

from recsys.nba.exploration import Explorer
from recsys.settings import Settings
from recsys.store import scripts
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from recsys.store.redis_reader import RedisSnapshotReader
from serving.auth import KeyCache
from serving.errors import install_error_handlers
from serving.guard import Limits, RequestGuard
from serving.hotpath import http_protocol
from serving.hotpath.reads import FastReadPath
from serving.hotpath.redis_cluster_mux import ClusterMux
from serving.hotpath.redis_mux import MuxRedis
from serving.hotpath.writes import FastWritePath
from serving.metrics import Metrics, MetricsMiddleware
from serving.openapi import install_openapi
from serving.ratelimit import AddressLimiter, KeyRateLimiter
from serving.redis_client import create_client
from serving.responses import OrjsonResponse
from serving.routers import ROUTERS
from serving.services import dashboard
from serving.services.foldin import FoldIn
from serving.ui import actions as ui_actions
from serving.ui import pages as ui_pages

# A young-generation threshold this high means a collection every ~50k allocations instead of 700:
# with frozen startup objects, each collection is short, and far fewer land inside a request.
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Freeze everything allocated at startup out of the collector and raise the gen-0 threshold."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def create_app(settings: Settings | None = None, *, gc_tuning: bool = True, hotpath: bool = True) -> FastAPI:
    """Return the Centric API. Redis comes from ``settings.redis_url``, or an embedded server for the app's lifetime.

    ``gc_tuning`` freezes startup objects and raises the GC threshold after startup (``False`` for comparisons).
    ``hotpath=False`` leaves out the hot-path middlewares: every request is routed (to compare both paths).
    """
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embedded: EmbeddedRedis | None = None
        url = settings.redis_url
        if not url:
            embedded = EmbeddedRedis(settings.home, appendfsync=settings.appendfsync)
            url = await asyncio.to_thread(embedded.start)
        client = create_client(url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30)
        app.state.redis = client
        app.state.redis_url = url  # for the few synchronous calls (the publisher's rollback from the web UI)
        app.state.keys = Keys(settings.env)
        app.state.settings = settings
        _attach_store(app)
        with contextlib.suppress(RedisError, OSError):  # the first rate-limited requests then cost one round trip
            await client.script_load(scripts.RATE_LIMIT.source)
        # the dashboard's figures over every member take a scan of the ledger: ready them before the first page
        warm = await dashboard.prepare(app) if settings.dashboard_warmup else None
        if gc_tuning:
            tune_gc()
        try:
            yield
        finally:
            if warm is not None:
                warm.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm
            mux = getattr(app.state, "mux", None)
            if mux is not None:
                await mux.aclose()
            await client.aclose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    app = FastAPI(
        title="Centric",
        version="1",
        summary="Recommendations, customer profiles, offers and loyalty from the active snapshot.",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # parsed here, once: a bad CENTRIC_EXPLORATION stops the service at start (ConfigError naming the channel),
    # not every offers request after it
    app.state.explorer = Explorer.from_config(settings.exploration, settings.exploration_seed)
    app.state.metrics = Metrics()
    # Added first, so they run inside the metrics middleware (fast answers are timed like the rest).
    if hotpath:
        app.add_middleware(FastReadPath)
        app.add_middleware(FastWritePath)
    # In front of both paths: limits, auth and rate limits before any body is read (serving.guard).
    limits = Limits.from_settings(settings)
    app.add_middleware(RequestGuard, limits=limits)
    http_protocol.configure(limits, header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    install_openapi(app, _description(settings))
    for router in (*ROUTERS, ui_pages.router, ui_actions.router):
        app.include_router(router)
    _install_ui(app)
    return app


def _description(settings: Settings) -> str:
    return (
        "Authenticate with `Authorization: Bearer <API key>`. Every error answers `ErrorPublic` "
        "(`detail`, `code`, and `problems` for 422).\n\n"
        f"Limits: request bodies up to {settings.max_body_bytes:,} bytes (413 beyond), request line plus headers up "
        f"to {settings.max_header_bytes:,} bytes (431 beyond); a request head must arrive within "
        f"{settings.header_timeout_s:g} s and its body within {settings.body_timeout_s:g} s. Rate limit per key: "
        f"{settings.rate_limit_per_s:g} requests/s, burst {settings.rate_limit_burst} (429 with Retry-After; 0 = off). "
        "Batches: up to 1000 events, 1000 order lines, 100 basket items.\n\n"
        "While Redis is unreachable, reads answer from the in-process fallback with `degraded: true`, writes answer "
        "503 with Retry-After, and `/readyz` answers 503. See docs/operations.md."
    )


def _install_ui(app: FastAPI) -> None:
    from starlette.responses import RedirectResponse

    from serving.ui.pages import page_error

    app.state.ui_errors = page_error  # errors of /ui pages render as HTML (serving.errors)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=307)


def _attach_store(app: FastAPI) -> None:
    state, settings = app.state, app.state.settings
    state.mux = MuxRedis.for_client(state.redis)
    state.key_cache = KeyCache(grace_s=settings.auth_grace_s)
    state.rate_limiter = KeyRateLimiter(
        state.redis, state.keys, settings.rate_limit_per_s, settings.rate_limit_burst, mux=state.mux
    )
    state.address_limiter = AddressLimiter(settings.auth_lookups_per_s)
    if isinstance(state.mux, ClusterMux):  # ledger writes acknowledged once on replicas (docs/scale.md)
        state.mux.wait_replicas = settings.ledger_wait_replicas
        state.mux.wait_timeout_ms = settings.ledger_wait_timeout_ms
    app.state.store = RedisSnapshotReader(app.state.redis, app.state.keys, mux=app.state.mux)
    app.state.foldin = FoldIn()
