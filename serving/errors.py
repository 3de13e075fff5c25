"""Domain errors → JSON error responses, in this one place.

Every error body is ``{"detail": "<what went wrong and what to do>", "code": "<machine-readable>"}``.
``code`` is the snake_case name of the domain error (``unknown_customer``, ``insufficient_points``,
``idempotency_conflict``, ``store_unavailable``, ``no_active_snapshot``) or ``validation_error`` /
``http_<status>`` for framework errors.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.exceptions import (
    ArtifactError,
    BatchTooLarge,
    CentricError,
    ConfigError,
    Conflict,
    DataError,
    NoActiveSnapshot,
    NotFound,
    StoreUnavailable,
)
from serving.responses import OrjsonResponse

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[CentricError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (StoreUnavailable, 503),
    (BatchTooLarge, 413),
    (NoActiveSnapshot, 503),
    (DataError, 422),
    (ConfigError, 422),
    (ArtifactError, 500),
)


def error_code(exc: BaseException) -> str:
    """Return the machine-readable code of an error: its class name in snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def status_of(exc: CentricError) -> int:
    """Return the HTTP status for a domain error (400 for any CentricError not listed)."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 400


def error_response(
    status: int, detail: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> OrjsonResponse:
    """Return the JSON error body every endpoint uses."""
    return OrjsonResponse({"detail": detail, "code": code, **extra}, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"query", "path", "body", "header"}:
        return (
            f"{parts[0]} parameter {'.'.join(parts[1:]) or '(body)'}"
            if parts[0] != "body"
            else f"body field {'.'.join(parts[1:]) or '(body)'}"
        )
    return ".".join(parts)


def domain_error_response(exc: CentricError, metrics: Any = None) -> OrjsonResponse:
    """Return the response for a domain error and count it (also used by the ASGI fast write path)."""
    status = status_of(exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    if metrics is not None:
        metrics.errors.labels(code=error_code(exc)).inc()
    return error_response(status, str(exc), error_code(exc), headers)


def _page_handler(request: Request) -> Any:
    # The web UI (``/ui``) renders its errors as HTML pages; the handler is set by the app (``app.state.ui_errors``).
    path = request.url.path
    if path == "/ui" or path.startswith("/ui/"):
        return getattr(request.app.state, "ui_errors", None)
    return None


async def _centric_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, CentricError)
    if (handler := _page_handler(request)) is not None:
        return await handler(request, exc)
    return domain_error_response(exc, getattr(request.app.state, "metrics", None))


async def _validation_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, RequestValidationError)
    if (handler := _page_handler(request)) is not None:
        return await handler(request, exc)
    problems = [
        {"location": _location(err.get("loc", ())), "message": err.get("msg", ""), "input": err.get("input")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{p['location']}: {p['message']}" for p in problems[:5])
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code="validation_error").inc()
    return error_response(422, f"invalid request: {summary}", "validation_error", problems=_jsonable(problems))


def _jsonable(value: Any) -> Any:
    # Validation inputs can be arbitrary objects (bytes, Decimal); keep the body serialisable.
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        # a lone surrogate cannot be encoded as JSON: show it escaped rather than fail the error response
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)  # orjson cannot write integers outside 64 bits: the error body must still serialise
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value)


async def _redis_error(request: Request, exc: Exception) -> Any:
    # A Redis failure a service did not turn into StoreUnavailable: still 503 with Retry-After, never a 500
    # (and on a UI page an HTML page, never raw JSON).
    unavailable = StoreUnavailable(f"Redis is unreachable ({type(exc).__name__}); retry shortly")
    if (handler := _page_handler(request)) is not None:
        return await handler(request, unavailable)
    return domain_error_response(unavailable, getattr(request.app.state, "metrics", None))


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code >= 400 and (handler := _page_handler(request)) is not None:
        return await handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /docs for the API"
    code = getattr(exc, "code", None) or f"http_{exc.status_code}"
    return error_response(exc.status_code, detail, code, dict(exc.headers) if exc.headers else None)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn domain and framework errors into JSON error responses."""
    app.add_exception_handler(CentricError, _centric_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RedisError, _redis_error)
