"""uvicorn's httptools protocol with each response written to the socket in one system call.

uvicorn writes the status line and headers on ``http.response.start`` and the body on ``http.response.body``: two
``send`` system calls (and two TCP segments) per response. Profiling a worker under load put ≈ 22 % of its samples on
those two writes (`benchmarks/README.md`, loyalty section). ``CoalescingHttpToolsProtocol`` hands uvicorn a transport
that gathers the writes of one event-loop turn and sends them together in the next: the header and body of a response,
and the responses to pipelined requests. Nothing waits longer than the end of the current loop turn; ``close()`` sends
what is gathered first, ``abort()`` drops it, as a plain transport would.

Used by ``centric serve`` and the benchmarks with
``uvicorn --http serving.hotpath.http_protocol:CoalescingHttpToolsProtocol``.
Without it (plain ``uvicorn serving.app:create_app``) the service answers the same bytes, in two writes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "serving.hotpath.http_protocol:CoalescingHttpToolsProtocol"


class _CoalescingTransport:
    """A transport proxy: ``write`` gathers, one ``transport.write`` per loop turn; everything else delegates."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request head above the limit (answered 431 first)."""


@dataclass
class ProtocolLimits:
    """The limits every connection of this process obeys (set by ``configure`` from the app's settings)."""

    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


LIMITS = ProtocolLimits()


def configure(limits: Any, *, header_timeout_s: float, body_timeout_s: float) -> None:
    """Set this process's connection limits (``create_app`` calls it with the settings' values)."""
    LIMITS.max_header_bytes = int(limits.max_header_bytes)
    LIMITS.header_timeout_s = float(header_timeout_s)
    LIMITS.body_timeout_s = float(body_timeout_s)


def _plain_response(status: bytes, message: str) -> bytes:
    code = status.split(b" ", 1)[1].decode().lower().replace(" ", "_")
    body = orjson.dumps({"detail": message, "code": code})
    head = f"HTTP/1.1 {status.decode()}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"connection: close\r\n\r\n" + body


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` on a write-coalescing transport (one ``send`` per response instead of two), with limits.

    uvicorn's httptools protocol has no limit on the size of a request head and no timeout until the first request
    has been answered (its keep-alive timeout starts only then), so a client that connects and sends nothing, or
    sends headers a byte at a time, holds the connection for ever. This protocol closes a connection whose request
    head is not complete within ``header_timeout_s`` (408), whose body is not complete within ``body_timeout_s``,
    and answers 431 to a request head above ``max_header_bytes`` before buffering more of it.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the proxy stands in for the Transport uvicorn was given (it delegates every other attribute)
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._head_bytes = 0
        self._rejected = False
        self._deadline: asyncio.TimerHandle | None = None
        self._arm(LIMITS.header_timeout_s, b"408 Request Timeout", "request head not received in time")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, status: bytes | None, message: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, status, message)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, status: bytes | None, message: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if status is not None and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_plain_response(status, message))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            # the first bytes of a next request on a kept-alive connection: its head must arrive in time
            self._arm(LIMITS.header_timeout_s, b"408 Request Timeout", "request head not received in time")
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > LIMITS.max_header_bytes:
            self._rejected = True
            self._disarm()
            self.transport.write(
                _plain_response(
                    b"431 Request Header Fields Too Large",
                    f"request head larger than {LIMITS.max_header_bytes} bytes (CENTRIC_MAX_HEADER_BYTES)",
                )
            )
            self.transport.close()
            raise _HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body and _expects_body(self.headers):
            self._arm(LIMITS.body_timeout_s, None, "request body not received in time")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._rejected:  # a head refused with 431 was already answered
            super().send_400_response(msg)


def _expects_body(headers: list[tuple[bytes, bytes]]) -> bool:
    return any((name == b"content-length" and value != b"0") or name == b"transfer-encoding" for name, value in headers)
