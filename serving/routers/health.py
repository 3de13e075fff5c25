"""``/healthz`` (process up), ``/readyz`` (Redis reachable and a snapshot active), ``/metrics``. No auth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from serving.deps import KeysDep, RedisDep, SettingsDep
from serving.responses import OrjsonResponse
from serving.services.events import events_backlog

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about Redis."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(redis: RedisDep, keys: KeysDep, settings: SettingsDep) -> OrjsonResponse:
    """Readiness: 200 with the active version when Redis answers and a snapshot is active, else 503 with why.

    ``status`` is ``degraded`` (still 200: answers are right) while more than ``events_backlog_max`` events wait
    for ``centric events sync``; ``events_backlog`` says how many.
    """
    try:
        version = await redis.get(keys.snapshot_pointer())
    except (RedisError, OSError) as exc:
        return OrjsonResponse(
            {
                "status": "unavailable",
                "detail": (
                    f"Redis is unreachable ({exc}): reads answer from the in-process fallback (degraded: true) "
                    "for keys verified before the outage, writes answer 503; recovers by itself when Redis is back"
                ),
                "code": "store_unavailable",
                "degraded": True,
            },
            status_code=503,
        )
    if version is None:
        return OrjsonResponse(
            {
                "status": "unavailable",
                "detail": "no active snapshot; publish one with `centric publish DIR`",
                "code": "no_active_snapshot",
            },
            status_code=503,
        )
    body: dict[str, object] = {"status": "ready", "version": version.decode()}
    try:
        backlog = await events_backlog(redis, keys)
    except (RedisError, OSError):
        backlog = None
    if backlog is not None:
        body["events_backlog"] = backlog
        if backlog > settings.events_backlog_max:
            body["status"] = "degraded"
            body["detail"] = (
                f"{backlog:,} events wait for `centric events sync` (bound {settings.events_backlog_max:,}); "
                f"at {settings.events_backlog_limit:,} new events are refused with 503 — run or fix the sync"
            )
    return OrjsonResponse(body)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, redis: RedisDep, keys: KeysDep, settings: SettingsDep) -> Response:
    """Prometheus metrics (latency by route, cache hits, fallbacks, errors, events backlog)."""
    state = request.app.state.metrics
    try:
        backlog = await events_backlog(redis, keys)
    except (RedisError, OSError):
        backlog = None
    if backlog is not None:
        state.events_backlog.set(backlog)
        state.events_backlog_over.set(1 if backlog > settings.events_backlog_max else 0)
    return state.render()
