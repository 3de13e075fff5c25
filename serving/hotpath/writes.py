"""A pure-ASGI fast path for the hot loyalty writes: earn and reverse.

Through FastAPI an earn spent more CPU in routing, dependency resolution (auth, loyalty service, path,
header and body parameters) and response-model validation than in its own work. When a request is
plainly well-formed — a key already in the in-process auth cache with write scope, one
``Idempotency-Key`` header of valid length, ``Content-Type: application/json``, no query string, a
JSON object that the same pydantic model (``EarnCreate`` / ``ReverseCreate``) accepts, and the loyalty
service already loaded — this middleware runs the same ledger call (``serving.services.loyalty``) and
answers with the same JSON. Anything else falls through to the FastAPI route with the body replayed
untouched, so validation, auth and framework errors keep their one canonical shape; domain errors the
ledger answers (409 idempotency conflict, duplicate order, 404 unknown order) are rendered by
``serving.errors.domain_error_response``, the function the route's exception handler uses.
The route table is derived from the routers (``serving.hotpath.routes``); ``tests/e2e/test_loyalty_fastwrite.py``
and ``tests/e2e/test_hotpath_parity.py`` send the same requests through both paths and compare the bytes.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys.exceptions import BatchTooLarge, CentricError, StoreUnavailable
from recsys.loyalty import ops
from serving.errors import domain_error_response
from serving.hotpath.reads import authorised
from serving.hotpath.routes import HotHandlers, HotRoute, derive_routes, match
from serving.routers import ROUTERS
from serving.routers import loyalty as loyalty_router
from serving.schemas.loyalty import ReverseCreate
from serving.services import loyalty

MAX_BODY = 256 * 1024  # larger bodies (e.g. 1,000 order lines) take the routed path
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")
_HEADERS = [(b"content-type", b"application/json")]


async def _reverse(
    svc: loyalty.LoyaltyService, customer_id: str, body: ReverseCreate, idem: str, now: datetime
) -> ops.Call:
    return loyalty.reverse_call(svc, customer_id, body.order_id, body.items, idem, now)


# endpoint → the ledger call it makes; every other rule comes from the endpoint's route (``routes.py``)
HANDLERS: HotHandlers = {loyalty_router.earn: loyalty.earn_call, loyalty_router.reverse: _reverse}


class FastWritePath:
    """ASGI middleware answering cached-auth, well-formed earn/reverse requests without FastAPI's routing."""

    def __init__(self, app: ASGIApp, routes: tuple[HotRoute, ...] | None = None) -> None:
        self.app = app
        self.routes = derive_routes(ROUTERS, HANDLERS) if routes is None else routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (hit := match(self.routes, scope)) is not None:
            route, customer_id = hit
            svc, idem = _precheck(scope, route)
            if svc is not None and idem is not None:
                messages, body = await _read_body(receive)
                receive = _replay(messages, receive)
                if body is not None and await self._answer(scope, receive, send, route, svc, customer_id, idem, body):
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: HotRoute,
        svc: loyalty.LoyaltyService,
        customer_id: str,
        idem: str,
        raw: bytes,
    ) -> bool:
        """Answer the request and return True, or return False (nothing sent, nothing written) to defer to the route."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(data, dict) or route.body is None:
            return False
        try:
            body = route.body.model_validate(data)
        except (ValidationError, BatchTooLarge):  # the route answers these (422, 413) as for any request
            return False
        call = await route.call(svc, customer_id, body, idem, loyalty.utcnow())
        scope["route"] = route
        try:
            answer = await loyalty.step(svc, call, customer_id, idem)
        except CentricError as exc:
            # the ledger ran: answer here (a second run through the route would not be the same request)
            await domain_error_response(exc, getattr(scope["app"].state, "metrics", None))(scope, receive, send)
            return True
        except RedisError as exc:
            # a dropped connection, a failover, a WAIT short of replicas: maybe applied, never acknowledged; the
            # client retries with the same key (a replay if it was applied). 503 as on the routed path, not a 500.
            unavailable = StoreUnavailable(
                f"loyalty write not confirmed: Redis is unavailable ({type(exc).__name__}); retry with the same "
                "Idempotency-Key"
            )
            await domain_error_response(unavailable, getattr(scope["app"].state, "metrics", None))(scope, receive, send)
            return True
        out = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": route.status,
                "headers": [*_HEADERS, (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})
        return True


def _precheck(scope: Scope, route: HotRoute) -> tuple[loyalty.LoyaltyService | None, str | None]:
    """Return ``(service, idempotency key)`` when the request qualifies before its body is read, else Nones."""
    if route.body is None or route.idempotency is None or scope.get("query_string") or scope.get("root_path"):
        return None, None
    state = scope["app"].state if "app" in scope else None
    svc = getattr(state, "loyalty", None)
    if svc is None:
        return None, None  # not loaded yet: the route loads it (and reports a bad program file)
    idem: list[bytes] = []
    content_type: list[bytes] = []
    length: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            idem.append(value)
        elif name == b"content-type":
            content_type.append(value)
        elif name == b"content-length":
            length.append(value)
        elif name == b"transfer-encoding":
            return None, None
    if len(idem) != 1 or len(content_type) != 1 or content_type[0].lower() not in _JSON_TYPES:
        return None, None
    if len(length) != 1 or not length[0].isdigit() or not 0 < int(length[0]) <= MAX_BODY:
        return None, None
    key = idem[0].decode("latin-1")
    if not route.header_ok(key) or not authorised(scope, getattr(state, "key_cache", None), route.scope):
        return None, None
    return svc, key


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Read the request body; return the messages read (to replay) and the body, None if it is not all there."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """Return a ``receive`` that hands out ``messages`` first, then reads on from ``receive``."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
