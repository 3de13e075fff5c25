"""Errors of the web UI render as HTML pages; the API keeps its JSON errors."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError

from serving.errors import install_error_handlers
from serving.ui.pages import page_error


def test_a_redis_failure_on_a_ui_page_is_an_html_503_page_and_json_on_the_api() -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.state.ui_errors = page_error

    async def boom() -> None:
        raise RedisConnectionError("connection refused")

    app.add_api_route("/ui/boom", boom)
    app.add_api_route("/v1/boom", boom)

    async def body() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://centric.test") as client:
            return await client.get("/ui/boom"), await client.get("/v1/boom")

    page, api = asyncio.run(body())
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "Redis is unreachable" in page.text and page.headers["cache-control"] == "no-store"
    assert api.status_code == 503 and api.json()["code"] == "store_unavailable"
    assert api.headers["retry-after"] == "1"
