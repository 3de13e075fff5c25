"""Issue 16 hardening: error bodies always serialise, Redis failures answer 503, secrets never printed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis
from fastapi import FastAPI
from pydantic import BaseModel, Field

from recsys.store.embedded import mask_url
from serving.errors import install_error_handlers
from serving.responses import OrjsonResponse


class _Body(BaseModel):
    k: int = Field(1, ge=1, le=100)


def _app() -> FastAPI:
    app = FastAPI(default_response_class=OrjsonResponse)
    install_error_handlers(app)

    @app.post("/k")
    async def k(body: _Body) -> dict[str, int]:
        return {"k": body.k}

    @app.get("/down")
    async def down() -> dict[str, str]:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    return app


async def _call(method: str, url: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(_app()), base_url="http://t") as http:
        return await http.request(method, url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [2**64, 2**70, -(2**70), 10**40])
def test_an_integer_beyond_64_bits_answers_422_with_a_json_body(value: int) -> None:
    answer = asyncio.run(_call("POST", "/k", content=f'{{"k": {value}}}', headers={"content-type": "application/json"}))
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_error"
    assert answer.json()["problems"][0]["input"] == str(value)


def test_a_redis_failure_answers_503_with_retry_after() -> None:
    answer = asyncio.run(_call("GET", "/down"))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == "store_unavailable"


def test_urls_are_printed_without_their_password() -> None:
    assert mask_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert mask_url("rediss://user:s3cret@cache.example:6380/1") == "rediss://user:***@cache.example:6380/1"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert "s3cret" not in mask_url("redis://:s3cret@host")
