"""The request guard: size limits, authentication and rate limits before a request's body is read.

An ASGI middleware in front of the hot paths and the routers, so that both obey the same rules
(``tests/e2e/test_hotpath_parity.py``). In order, for every HTTP request:

1. request line plus headers above ``max_header_bytes`` → 431 (the HTTP protocol, ``serving.hotpath.http_protocol``,
   refuses them even earlier, before they are buffered);
2. a ``Content-Length`` above ``max_body_bytes`` → 413 at once; a chunked body is counted as it arrives and
   refused with 413 the moment it passes the limit, so a 100 MB body is never read;
3. for ``/v1/…``: the API key is checked (401 missing/unknown, 403 scope too low, 503 if Redis is needed and
   unreachable, 429 when one client address sends too many unknown keys), then the key's rate limit (429) — all
   before the body is read, so a request with no key gets 401 whatever its body;
4. an exception no handler turned into an answer becomes a JSON 500 (``internal_error``) with
   ``Connection: close``, and is logged; the framework would otherwise drop the connection without saying so.

Answers that leave unread bytes on the connection (413, 431, 500, and any refusal of a request with a body) carry
``Connection: close``, so a keep-alive
client knows the connection ends there. The verified ``(key, scope)`` is left in the ASGI scope
(``serving.auth.VERIFIED``) for the dependency and the hot paths, so a key is checked once per request.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys.exceptions import CentricError, StoreUnavailable
from serving import batch_limit
from serving.auth import VERIFIED, AuthError, _key_id, admit, bearer_token, lookup_scope, required_scope
from serving.errors import domain_error_response, error_response
from serving.ratelimit import RateLimited
from serving.routers import ROUTERS

log = logging.getLogger(__name__)

API_PREFIX = "/v1/"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Limits:
    """The request limits the guard and the HTTP protocol enforce (from ``Settings``)."""

    max_body_bytes: int = 4 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_batch: int = batch_limit.HARD_MAX

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """Return the limits of ``settings`` (``max_body_bytes``, ``max_header_bytes``, ``max_batch``)."""
        return cls(settings.max_body_bytes, settings.max_header_bytes, settings.max_batch)


class BodyTooLarge(HTTPException):
    """413: the body passed ``max_body_bytes`` (raised from ``receive``; the route's handler renders it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body larger than {limit:,} bytes; send less (CENTRIC_MAX_BODY_BYTES sets the limit)",
            headers={"Connection": "close"},
        )
        self.code = "body_too_large"


def route_scopes(routes: list[Any]) -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """Return ``(method, path regex, scope)`` of every ``/v1`` route that demands a scope (``require_scope``)."""
    out = []
    for route in routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(API_PREFIX):
            continue
        scopes = [s for d in route.dependant.dependencies if (s := required_scope(d.call)) is not None]
        for method in route.methods or ():
            if scopes:
                out.append((method, route.path_regex, scopes[0]))
    return tuple(out)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return True
    return False


class RequestGuard:
    """ASGI middleware: limits, auth and rate limits before the body (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self._scopes = route_scopes([route for router in ROUTERS for route in router.routes])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        batch_token = batch_limit.set_limit(self.limits.max_batch)  # read by the schemas' list validators

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            has_body = _has_body(scope)
            refusal = await self._refuse(scope)
            if refusal is not None:
                if has_body:  # the body is never read: end the connection rather than drain it
                    refusal.headers["Connection"] = "close"
                await refusal(scope, receive, tracked_send)
                return
            await self.app(scope, self._counting(receive) if has_body else receive, tracked_send)
        except BodyTooLarge as exc:
            if not started:
                await self._answer(exc)(scope, receive, tracked_send)
        except RedisError as exc:  # from a middleware path (the routes' handlers map it already): 503, not 500
            if not started:
                unavailable = StoreUnavailable(f"Redis is unreachable ({type(exc).__name__}); retry shortly")
                await domain_error_response(unavailable, getattr(scope["app"].state, "metrics", None))(
                    scope, receive, tracked_send
                )
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = error_response(
                    500,
                    "internal error: the request failed in an unexpected way; it has been logged",
                    "internal_error",
                    {"Connection": "close"},
                )
                await response(scope, receive, tracked_send)
        finally:
            batch_limit.reset(batch_token)

    async def _refuse(self, scope: Scope) -> Any:
        """Return the response refusing this request before its body, or ``None`` to let it through."""
        limits = self.limits
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                if value.isdigit() and int(value) > limits.max_body_bytes:
                    return self._answer(BodyTooLarge(limits.max_body_bytes))
            elif name == b"authorization":
                authorization = value
        if size > limits.max_header_bytes:
            return error_response(
                431,
                f"request headers larger than {limits.max_header_bytes:,} bytes (CENTRIC_MAX_HEADER_BYTES)",
                "headers_too_large",
                {"Connection": "close"},
            )
        if not scope["path"].startswith(API_PREFIX):
            return None
        needed = self._needed_scope(scope)
        if needed is None:
            return None
        try:
            token = bearer_token(authorization.decode("latin-1") if authorization is not None else None)
            state = scope["app"].state
            client = scope.get("client")
            granted = admit(await lookup_scope(state, token, client[0] if client else None), needed)
            limiter = getattr(state, "rate_limiter", None)
            if limiter is not None:
                await limiter.check(_key_id(token) or "")
        except (AuthError, RateLimited) as exc:
            return self._answer(exc)
        except CentricError as exc:  # StoreUnavailable: Redis needed and unreachable
            return domain_error_response(exc, getattr(scope["app"].state, "metrics", None))
        scope[VERIFIED] = (token, granted)
        return None

    def _needed_scope(self, scope: Scope) -> str | None:
        method = scope["method"]
        if method in _READ_METHODS:
            return "read"  # every /v1 read demands at least read; a higher scope is checked by the route
        path = scope["path"]
        for route_method, regex, needed in self._scopes:
            if route_method == method and regex.match(path):
                return needed
        return None  # no such route: the router answers 404/405

    @staticmethod
    def _answer(exc: HTTPException) -> Any:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        code = getattr(exc, "code", None) or f"http_{exc.status_code}"
        return error_response(exc.status_code, detail, code, dict(exc.headers) if exc.headers else None)

    def _counting(self, receive: Receive) -> Receive:
        limit = self.limits.max_body_bytes
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted
