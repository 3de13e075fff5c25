"""Issue 16 limits at the connection (uvicorn with Centric's HTTP protocol): stalled clients, 431, clean closes."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from recsys.store.keys import Keys
from tests.helpers.http import bearer, uvicorn_server

LIMITS = {
    "CENTRIC_HEADER_TIMEOUT_S": "1",
    "CENTRIC_BODY_TIMEOUT_S": "1",
    "CENTRIC_MAX_HEADER_BYTES": "2048",
    "CENTRIC_MAX_BODY_BYTES": "4096",
}


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[tuple[str, Keys]]:
    keys = Keys("limitshttp")
    with uvicorn_server(redis_url, keys, **LIMITS) as base:
        yield base, keys


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock


def _read_until_closed(sock: socket.socket, limit_s: float = 5.0) -> tuple[bytes, float]:
    """Return everything the server sent until it closed the connection, and how long that took."""
    start, data = time.monotonic(), b""
    sock.settimeout(limit_s)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def _one_response(sock: socket.socket) -> bytes:
    """Read one response with a Content-Length body from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server: tuple[str, Keys]) -> None:
    with _connect(server[0]) as sock:
        data, took = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408") and took < 4


def test_a_request_head_sent_too_slowly_is_closed_after_the_header_timeout(server: tuple[str, Keys]) -> None:
    with _connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        data, took = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408") and b"connection: close" in data.lower() and took < 4


def test_a_body_that_stalls_is_closed_after_the_body_timeout(server: tuple[str, Keys], redis_url: str) -> None:
    base, keys = server
    auth = bearer(redis_url, keys, "write")["Authorization"]
    with _connect(base) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: {auth}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"events": ['
        )
        _, took = _read_until_closed(sock)
    assert took < 4  # closed by the server, not by our 5 s read timeout


def test_a_request_head_above_the_limit_answers_431_before_it_is_all_sent(server: tuple[str, Keys]) -> None:
    with _connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(2):
            sock.sendall(b"X-Pad: " + b"p" * 4000 + b"\r\n")  # the head is never finished
        data, took = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431") and took < 0.9  # answered at once, not at the header timeout


def test_a_head_just_above_the_limit_gets_a_431_answer(server: tuple[str, Keys]) -> None:
    with _connect(server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 2100 + b"\r\n\r\n")
        data, _ = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431") and b"connection: close" in data.lower()


def test_keep_alive_survives_a_client_error_and_is_closed_cleanly_after_a_refused_body(
    server: tuple[str, Keys], redis_url: str
) -> None:
    base, keys = server
    auth = bearer(redis_url, keys, "read")["Authorization"].encode()
    with _connect(base) as sock:
        request = (
            b"GET /v1/customers/c1/recommendations?k=0 HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n"
        )
        sock.sendall(request)
        first = _one_response(sock)
        sock.sendall(request)  # same connection: still open after a 422
        second = _one_response(sock)
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
        refused, _ = _read_until_closed(sock)
    assert first.startswith(b"HTTP/1.1 422") and second.startswith(b"HTTP/1.1 422")
    assert b"connection: close" not in first.lower()
    assert refused.startswith(b"HTTP/1.1 413") and b"connection: close" in refused.lower()
