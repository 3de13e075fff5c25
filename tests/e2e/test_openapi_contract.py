"""Issue 16: the OpenAPI document states the error schema actually sent, every status, and the request constraints."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from tests.helpers.http import app_client, bearer

ERROR_REF = "#/components/schemas/ErrorPublic"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app(Settings(), gc_tuning=False).openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items() if p.startswith("/v1/")]


def test_every_operation_documents_the_error_schema_that_is_sent_for_every_error_status(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(doc)  # FastAPI's 422 shape (detail as an array) is not what we send
    error = doc["components"]["schemas"]["ErrorPublic"]
    assert set(error["required"]) == {"detail", "code"} and "problems" in error["properties"]
    for method, path, op in _operations(doc):
        responses = op["responses"]
        for status in ("401", "403", "422", "429", "503"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, (method, path)
        assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in op:
            assert {"400", "413"} <= responses.keys(), (method, path)
        if method == "post" and path != "/v1/recommendations/basket":
            assert "409" in responses, (method, path)
        assert op["security"] == [{"apiKey": []}]
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]


def test_the_document_states_the_limits(doc: dict[str, Any]) -> None:
    text = doc["info"]["description"]
    assert "4,194,304 bytes" in text and "413" in text and "431" in text and "429" in text


def test_decimal_strings_are_constrained_in_the_schema_exactly_as_the_server_checks_them(doc: dict[str, Any]) -> None:
    amount = doc["components"]["schemas"]["EarnCreate"]["properties"]["amount"]
    number, text = amount["anyOf"]
    assert number == {"type": "number", "minimum": 0, "maximum": 100_000_000}
    pattern = re.compile(text["pattern"])
    for accepted in ("0", "12.50", "99999999.99", "100000000", "100000000.00"):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("", " 5", "1e5", "-1", "100000000.01", "00", "+3", "1."):
        assert not pattern.fullmatch(refused), refused


def test_the_schema_says_which_events_need_an_item_or_an_offer(doc: dict[str, Any]) -> None:
    rules = doc["components"]["schemas"]["EventCreate"]["allOf"]
    view = next(r for r in rules if "view" in r["if"]["properties"].get("type", {}).get("enum", []))
    assert view["then"]["required"] == ["item_id"] and view["then"]["properties"]["item_id"] == {"type": "string"}


def test_the_server_checks_what_the_schema_states(redis_url: str, keys: Keys) -> None:
    write, admin = bearer(redis_url, keys, "write"), bearer(redis_url, keys, "admin")
    earn = "/v1/customers/c1/loyalty/earn"

    async def body() -> list[httpx.Response]:
        async with app_client(redis_url, keys) as http:
            return [
                await http.post(earn, json={"order_id": "o1", "amount": ""}, headers={**write, "Idempotency-Key": "a"}),
                await http.post(
                    earn, json={"order_id": "o1", "amount": "1e3"}, headers={**write, "Idempotency-Key": "b"}
                ),
                await http.post("/v1/events", json={"events": [{"type": "view", "customer_id": "c1"}]}, headers=write),
                await http.post(
                    "/v1/events",
                    json={"events": [{"type": "view", "customer_id": "c1", "item_id": "i", "timestamp": 0}]},
                    headers=write,
                ),
                await http.post(
                    "/v1/loyalty/grants",
                    json={
                        "reason": "x",
                        "grants": [{"customer_id": "c1", "points": 1}, {"customer_id": "c1", "points": 2}],
                    },
                    headers={**admin, "Idempotency-Key": "g"},
                ),
                await http.post("/v1/recommendations/basket", json={"item_ids": ["milk"], "k": "5"}, headers=write),
                await http.post("/v1/recommendations/basket", json={"item_ids": ["milk"], "k": 5.0}, headers=write),
            ]

    empty, exponent, view, epoch, twice, k_text, k_float = asyncio.run(body())
    for refused in (empty, exponent, view, epoch, k_text):
        assert refused.status_code == 422 and refused.json()["code"] == "validation_error", refused.text
    assert twice.status_code == 409 and twice.json()["code"] == "duplicate_grant_customer"
    assert k_float.status_code in (200, 503)  # 5.0 is an integer to JSON Schema: not a validation error
