"""The hot path's route table, derived from the routers' own routes.

Each hot endpoint is named once, by its router function (``HotHandlers``: endpoint → the hot call that does
its work). Everything else the hot path checks is read from the ``APIRoute`` of that endpoint: method, path
template, the path parameter's rules, the query-parameter model and the allowed names (as
``serving.routing.StrictQueryRoute`` derives them), the body model, the ``Idempotency-Key`` header's rules,
the scope that ``require_scope`` demands, and the success status. A rule added to the endpoint's signature
is therefore checked by both paths. A rule the hot path cannot check itself — a dependency it does not know,
a parameter of a kind it does not parse — removes the endpoint from the table (``derive_routes`` says why), so
such requests take the routed path rather than skip the rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import Scope

from serving.auth import required_scope
from serving.deps import get_serving, get_store
from serving.routing import query_names
from serving.services.loyalty import get_loyalty

log = logging.getLogger(__name__)

# Dependencies the hot path resolves itself from ``app.state`` (the handlers read the same objects).
RESOLVED_BY_HOT_PATH: frozenset[Callable[..., Any]] = frozenset({get_serving, get_store, get_loyalty})
IDEMPOTENCY_HEADER = "Idempotency-Key"
_ONE_PARAM = re.compile(r"^([^{}]*)\{(\w+)\}([^{}]*)$")


@dataclass(frozen=True)
class HotRoute:
    """One endpoint ``prefix{param}suffix`` as the hot path serves it; every rule comes from ``route``."""

    route: APIRoute
    method: str
    prefix: str
    suffix: str
    scope: str
    query: type[BaseModel] | None  # the query-parameter model (``None``: the endpoint takes no query parameters)
    allowed_query: frozenset[str]
    body: type[BaseModel] | None
    idempotency: Any  # the ``Idempotency-Key`` header's field (``None``: the endpoint takes no header)
    status: int
    call: Any  # the hot handler

    @property
    def path(self) -> str:
        """The route template: the metrics middleware labels by ``scope["route"].path``."""
        return self.route.path

    def entity(self, path: str) -> str | None:
        """Return the path parameter of ``path`` if ``path`` is this route's and the parameter passes its rules."""
        if len(path) <= len(self.prefix) + len(self.suffix):
            return None
        if not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return None
        value = path[len(self.prefix) : len(path) - len(self.suffix)]
        if "/" in value:
            return None
        field = self.route.dependant.path_params[0]
        _, errors = field.validate(value, {}, loc=("path", field.alias))
        return None if errors else value

    def header_ok(self, value: str) -> bool:
        """Return whether ``value`` passes the ``Idempotency-Key`` header's rules."""
        _, errors = self.idempotency.validate(value, {}, loc=("header", IDEMPOTENCY_HEADER))
        return not errors


HotHandlers = Mapping[Callable[..., Any], Any]


def match(routes: Iterable[HotRoute], scope: Scope) -> tuple[HotRoute, str] | None:
    """The hot route an HTTP request's method and path select, with the path's entity id; None for no route."""
    method, path = scope["method"], scope["path"]
    for route in routes:
        if route.method != method:
            continue
        entity_id = route.entity(path)
        if entity_id is not None:
            return route, entity_id
    return None


def derive_routes(routers: Iterable[APIRouter], handlers: HotHandlers) -> tuple[HotRoute, ...]:
    """Return the hot routes of ``handlers``' endpoints found in ``routers``; log each endpoint left out, and why."""
    out = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.endpoint in handlers:
                hot = hot_route(route, handlers[route.endpoint])
                if isinstance(hot, str):
                    log.warning("%s %s takes the routed path only: %s", route.methods, route.path, hot)
                else:
                    out.append(hot)
    return tuple(out)


def hot_route(route: APIRoute, call: Any) -> HotRoute | str:
    """Return the hot route of ``route``, or why the hot path cannot serve it."""
    dependant = route.dependant
    match = _ONE_PARAM.match(route.path)
    if not route.methods or len(route.methods) != 1 or match is None or len(dependant.path_params) != 1:
        return "not one method and one path parameter"
    scopes = []
    for dependency in dependant.dependencies:
        scope = required_scope(dependency.call)
        if scope is not None:
            scopes.append(scope)
        elif dependency.call not in RESOLVED_BY_HOT_PATH:
            return (
                f"dependency {getattr(dependency.call, '__name__', dependency.call)!r} is not resolved by the hot path"
            )
    if len(scopes) != 1:
        return "no single require_scope dependency"
    if dependant.cookie_params or len(dependant.query_params) > 1 or len(dependant.body_params) > 1:
        return "parameters the hot path does not parse"
    query = _model(dependant.query_params)
    body = _model(dependant.body_params)
    if (dependant.query_params and query is None) or (dependant.body_params and body is None):
        return "query or body parameters that are not one model"
    headers = dependant.header_params
    if len(headers) > 1 or (
        headers and (headers[0].alias != IDEMPOTENCY_HEADER or not headers[0].field_info.is_required())
    ):
        return "headers other than a required Idempotency-Key"
    return HotRoute(
        route=route,
        method=next(iter(route.methods)),
        prefix=match.group(1),
        suffix=match.group(3),
        scope=scopes[0],
        query=query,
        allowed_query=query_names(dependant),
        body=body,
        idempotency=headers[0] if headers else None,
        status=route.status_code or 200,
        call=call,
    )


def _model(params: list[Any]) -> type[BaseModel] | None:
    if len(params) != 1:
        return None
    annotation = params[0].field_info.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
