"""``/healthz`` (process up), ``/readyz`` (Redis reachable and a snapshot active), ``/metrics``. No auth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from serving.deps import KeysDep, RedisDep
from serving.responses import OrjsonResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about Redis."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(redis: RedisDep, keys: KeysDep) -> OrjsonResponse:
    """Readiness: 200 with the active version when Redis answers and a snapshot is active, else 503 with why."""
    try:
        version = await redis.get(keys.snapshot_pointer())
    except (RedisError, OSError) as exc:
        return OrjsonResponse(
            {"status": "unavailable", "detail": f"Redis is unreachable: {exc}", "code": "store_unavailable"},
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
    return OrjsonResponse({"status": "ready", "version": version.decode()})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (latency by route, cache hits, fallbacks, errors)."""
    return request.app.state.metrics.render()
