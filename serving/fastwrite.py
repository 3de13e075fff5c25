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
``tests/e2e/test_loyalty_fastwrite.py`` sends the same requests through both paths and compares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys.exceptions import CentricError
from recsys.loyalty import ops
from serving.errors import domain_error_response
from serving.fastpath import authorised
from serving.schemas.loyalty import EarnCreate, ReverseCreate
from serving.services import loyalty

PREFIX = "/v1/customers/"
MAX_BODY = 256 * 1024  # larger bodies (e.g. 1,000 order lines) take the routed path
MAX_CUSTOMER_ID = 128  # as ``CustomerId`` in serving/routers/loyalty.py
MAX_IDEMPOTENCY_KEY = 200  # as ``IdempotencyKey`` there
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")
_HEADERS = [(b"content-type", b"application/json")]
MakeCall = Callable[[loyalty.LoyaltyService, str, Any, str, datetime], Awaitable[ops.Call]]


async def _earn(svc: loyalty.LoyaltyService, customer_id: str, body: EarnCreate, idem: str, now: datetime) -> ops.Call:
    return loyalty.earn_call(svc, customer_id, body, idem, now, await loyalty.item_categories(svc, body))


async def _reverse(
    svc: loyalty.LoyaltyService, customer_id: str, body: ReverseCreate, idem: str, now: datetime
) -> ops.Call:
    return loyalty.reverse_call(svc, customer_id, body.order_id, body.items, idem, now)


@dataclass(frozen=True)
class WriteRoute:
    """One write endpoint ``/v1/customers/{customer_id}<suffix>``: its body model and ledger call."""

    path: str  # the route template: the metrics middleware labels by ``scope["route"].path``
    model: type[BaseModel]
    call: MakeCall


ROUTES = {
    "/loyalty/earn": WriteRoute("/v1/customers/{customer_id}/loyalty/earn", EarnCreate, _earn),
    "/loyalty/reverse": WriteRoute("/v1/customers/{customer_id}/loyalty/reverse", ReverseCreate, _reverse),
}


class FastWritePath:
    """ASGI middleware answering cached-auth, well-formed earn/reverse requests without FastAPI's routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(PREFIX):
            path: str = scope["path"]
            cut = path.rfind("/loyalty/")
            route = ROUTES.get(path[cut:]) if cut > len(PREFIX) else None
            if route is not None:
                svc, idem = _precheck(scope, path[len(PREFIX) : cut])
                if svc is not None and idem is not None:
                    messages, body = await _read_body(receive)
                    receive = _replay(messages, receive)
                    if body is not None and await self._answer(
                        scope, receive, send, route, svc, path[len(PREFIX) : cut], idem, body
                    ):
                        return
        await self.app(scope, receive, send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: WriteRoute,
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
        if not isinstance(data, dict):
            return False
        try:
            body = route.model.model_validate(data)
        except ValidationError:
            return False
        call = await route.call(svc, customer_id, body, idem, loyalty.utcnow())
        scope["route"] = route
        try:
            answer = await loyalty.step(svc, call, customer_id, idem)
        except CentricError as exc:
            # the ledger ran: answer here (a second run through the route would not be the same request)
            await domain_error_response(exc, getattr(scope["app"].state, "metrics", None))(scope, receive, send)
            return True
        out = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(out)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": out})
        return True


def _precheck(scope: Scope, customer_id: str) -> tuple[loyalty.LoyaltyService | None, str | None]:
    """Return ``(service, idempotency key)`` when the request qualifies before its body is read, else Nones."""
    if (
        not customer_id
        or "/" in customer_id
        or len(customer_id) > MAX_CUSTOMER_ID
        or scope.get("query_string")
        or scope.get("root_path")
    ):
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
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not authorised(scope, getattr(state, "key_cache", None), "write"):
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
