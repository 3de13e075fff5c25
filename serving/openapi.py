"""The OpenAPI document as the truth: every error an operation can answer, in the one shape actually sent.

FastAPI documents only the statuses a route declares, and its 422 as ``HTTPValidationError`` (``detail`` an array),
which is not what ``serving.errors`` sends. ``install_openapi`` post-processes the generated document once:

- every ``/v1`` operation gets ``ErrorPublic`` answers for each status it can return: 401/403 (key), 404 (a path
  entity), 409 (writes), 413 (a body above ``max_body_bytes``), 422 (validation), 429 (rate limits, with
  ``Retry-After``), 431 (headers above ``max_header_bytes``) and 503 (Redis unreachable, with ``Retry-After``);
- ``/readyz`` documents its 503; FastAPI's ``HTTPValidationError`` / ``ValidationError`` components are removed;
- the API-key scheme (``Authorization: Bearer``) is declared and required on ``/v1`` operations;
- the limits are stated in the document's description.

``tests/e2e/test_schemathesis.py`` fuzzes the service against this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.auth import required_scope

ERROR_REF = {"$ref": "#/components/schemas/ErrorPublic"}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}
WHY = {
    "400": "The request could not be read (a malformed body)",
    "401": "No API key, a malformed Authorization header, or an unknown or revoked key",
    "403": "The key's scope is too low for this endpoint",
    "404": "The customer, item, offer, reward or order is not known",
    "409": "The write conflicts with the ledger (idempotency key reused with another body, duplicate order, "
    "insufficient points, out of stock)",
    "413": "The body is larger than the limit (CENTRIC_MAX_BODY_BYTES), or a list longer than CENTRIC_MAX_BATCH",
    "422": "The request is invalid: `problems` names each field and why",
    "429": "Rate limit of this key, or of unknown-key lookups from this address, exceeded; see Retry-After",
    "431": "The request headers are larger than the limit (CENTRIC_MAX_HEADER_BYTES)",
    "503": "Redis is unreachable or no snapshot is active; reads may still answer degraded; see Retry-After",
}
_WRITE_METHODS = {"post", "put", "patch", "delete"}


def install_openapi(app: FastAPI, description: str) -> None:
    """Make ``app.openapi()`` return the post-processed document (built once, on first request)."""
    scopes = _scopes(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=description,
                routes=app.routes,
            )
            app.openapi_schema = complete(doc, scopes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _scopes(app: FastAPI) -> dict[tuple[str, str], str]:
    from fastapi.routing import APIRoute

    from serving.routers import ROUTERS

    out: dict[tuple[str, str], str] = {}
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                found = [s for d in route.dependant.dependencies if (s := required_scope(d.call)) is not None]
                for method in route.methods or ():
                    if found:
                        out[(method.lower(), route.path)] = found[0]
    return out


def complete(doc: dict[str, Any], scopes: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Return ``doc`` with every operation's error answers, security and the real error schema (see module doc)."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`centric keys create --scope read|write|admin`); admin > write > read",
        }
    }
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = _statuses(path, method, operation, scopes)
            responses = operation.setdefault("responses", {})
            for status in statuses:
                answer: dict[str, Any] = {
                    "description": WHY[status],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
                if status in ("429", "503"):
                    answer["headers"] = RETRY_AFTER
                responses[status] = answer
            scope = scopes.get((method, path))
            if scope is not None:
                operation["security"] = [{"apiKey": []}]
                operation["description"] = (
                    operation.get("description", "") + f"\n\nNeeds an API key with scope `{scope}` or higher."
                ).strip()
    return doc


def _statuses(path: str, method: str, operation: dict[str, Any], scopes: dict[tuple[str, str], str]) -> list[str]:
    if path == "/readyz":
        return ["503"]
    if not path.startswith("/v1/"):
        return []
    out = ["422", "429", "431", "503"]
    if (method, path) in scopes:
        out += ["401", "403"]
    if "requestBody" in operation:
        out += ["400", "413"]
    if "{" in path:
        out.append("404")
    if method in _WRITE_METHODS:
        out += ["404", "409"]
    return sorted(set(out))
