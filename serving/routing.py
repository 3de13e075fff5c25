"""``StrictQueryRoute``: an APIRoute that rejects query parameters the endpoint does not declare.

A typo such as ``?limit=5`` then fails with 422 naming the parameter and the allowed ones, instead of
being silently ignored. The allowed names come from the endpoint's own signature, so they cannot drift,
and the check costs one set difference per request (no extra dependency to resolve).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response


class StrictQueryRoute(APIRoute):
    """APIRoute whose handler answers 422 for undeclared query parameters."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler with the query-parameter check."""
        handler = super().get_route_handler()
        allowed = query_names(self.dependant)

        async def strict_handler(request: Request) -> Response:
            if request.scope.get("query_string"):
                unknown = set(request.query_params) - allowed
                if unknown:
                    raise RequestValidationError(
                        [_problem(name, request.query_params.get(name), allowed) for name in sorted(unknown)]
                    )
            return await handler(request)

        return strict_handler


def query_names(dependant: Dependant) -> frozenset[str]:
    """Return the query parameter names an endpoint and its dependencies declare."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                # A query-parameter model (``Annotated[Model, Query()]``) contributes its own fields.
                names.update(f.alias or name for name, f in annotation.model_fields.items())
            else:
                names.add(field.alias)
        stack.extend(current.dependencies)
    return frozenset(names)


def _problem(name: str, value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    return {
        "loc": ("query", name),
        "msg": f"unknown query parameter; allowed: {', '.join(sorted(allowed)) or 'none'}",
        "type": "unknown_parameter",
        "input": value,
    }
