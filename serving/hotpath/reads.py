"""A pure-ASGI fast path for the hot reads: recommendations, profile and similar items.

FastAPI's per-request dependency and parameter resolution costs about as much CPU as the work itself
on these endpoints. When a request is plainly well-formed — an API key already in the in-process auth
cache with read scope, known query parameters that validate — this middleware answers it directly
with the same service function and response shape. Anything else (no or unknown key, bad parameters,
an error from the service) falls through to the FastAPI route, which produces the one canonical
answer or error, so both paths always agree. The route table is derived from the routers
(``serving.hotpath.routes``); ``tests/e2e/test_hotpath_parity.py`` checks that both paths answer the same bytes.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.auth import VERIFIED, KeyCache, _key_id, hash_key, scope_rank
from serving.hotpath.routes import HotHandlers, HotRoute, derive_routes, match
from serving.routers import ROUTERS
from serving.routers import items as items_router
from serving.routers import profiles as profiles_router
from serving.routers import recommendations as recommendations_router
from serving.schemas.recommendations import RecommendationsQuery, SimilarQuery
from serving.services import items, profiles, recommendations

_HEADERS = [(b"content-type", b"application/json")]


async def _recommendations(state: Any, customer_id: str, query: RecommendationsQuery) -> dict[str, Any]:
    return await recommendations.recommend_query(
        state.store, customer_id, query, foldin=getattr(state, "foldin", None), metrics=state.metrics
    )


async def _profile(state: Any, customer_id: str, _query: None) -> dict[str, Any]:
    return await profiles.profile(state.store, customer_id)


async def _similar(state: Any, item_id: str, query: SimilarQuery) -> dict[str, Any]:
    return await items.similar(state.store, item_id, k=query.k)


# endpoint → the call that does its work; every other rule comes from the endpoint's route (``routes.py``)
HANDLERS: HotHandlers = {
    recommendations_router.get_recommendations: _recommendations,
    profiles_router.get_profile: _profile,
    items_router.get_similar: _similar,
}


class FastReadPath:
    """ASGI middleware answering cached-auth, valid read requests without FastAPI's routing."""

    def __init__(self, app: ASGIApp, routes: tuple[HotRoute, ...] | None = None) -> None:
        self.app = app
        self.routes = derive_routes(ROUTERS, HANDLERS) if routes is None else routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (hit := match(self.routes, scope)) is not None:
            route, entity_id = hit
            body = await self._answer(scope, route, entity_id)
            if body is not None:
                scope["route"] = route
                headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": route.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, route: HotRoute, entity_id: str) -> bytes | None:
        state = scope["app"].state if "app" in scope else None
        if (
            state is None
            or getattr(state, "store", None) is None
            or not authorised(scope, getattr(state, "key_cache", None), route.scope)
        ):
            return None
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query: Any = None
        if route.query is None:
            if pairs:
                return None
        else:
            params: dict[str, Any] = dict(pairs)
            if len(params) != len(pairs) or not params.keys() <= route.allowed_query:
                return None  # repeated or unknown parameters: the route answers
            try:
                query = route.query.model_validate(params)
            except ValidationError:
                return None
        try:
            answer = await route.call(state, entity_id, query)
        except Exception:
            return None
        return orjson.dumps(answer)


def authorised(scope: Scope, cache: KeyCache | None, needed: str = "read") -> bool:
    """Return whether the request's key is in the auth cache, matches its digest and has ``needed`` scope or higher."""
    verified = scope.get(VERIFIED)  # checked by the request guard already (serving.guard)
    if verified is not None:
        return scope_rank(verified[1]) >= scope_rank(needed)
    if cache is None:
        return False
    token = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if token is None or token[:7].lower() != b"bearer ":
        return False
    api_key = token[7:].strip().decode("latin-1")
    key_id = _key_id(api_key)
    record = cache.get(key_id) if key_id else None
    if record is None:
        return False
    digest, granted = record
    return hmac.compare_digest(digest, hash_key(api_key)) and scope_rank(granted) >= scope_rank(needed)
