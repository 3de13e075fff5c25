"""uvicorn with ``serving.hotpath.http_protocol`` (as ``centric serve`` runs it): pipelined, closing, large answers."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from recsys.store.keys import Keys
from tests.helpers.http import uvicorn_server


@pytest.fixture
def base(redis_url: str, keys: Keys) -> Iterator[int]:
    with uvicorn_server(redis_url, keys) as url:
        yield int(url.rsplit(":", 1)[1])


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_pipelined_requests_get_whole_responses_in_order(base: int) -> None:
    with socket.create_connection(("127.0.0.1", base), timeout=10) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" * 3
            + b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        raw = _read_until_closed(sock)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
    assert statuses == [b"200", b"200", b"200", b"404"]
    assert raw.count(b'{"status":"ok"}') == 3


def test_http10_response_is_complete_before_the_connection_closes(base: int) -> None:
    with socket.create_connection(("127.0.0.1", base), timeout=10) as sock:
        sock.sendall(b"GET /openapi.json HTTP/1.0\r\n\r\n")
        raw = _read_until_closed(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    assert head.startswith(b"HTTP/1.1 200") and len(body) == length > 10_000
    assert "/v1/customers/{customer_id}/recommendations" in json.loads(body)["paths"]


def test_many_concurrent_clients_get_correct_answers(base: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{base}", timeout=10) as http:
        spec = http.get("/openapi.json")
        assert spec.status_code == 200 and len(spec.content) == int(spec.headers["content-length"])
        answers = [http.get("/healthz").json() for _ in range(50)]
    assert answers == [{"status": "ok"}] * 50
