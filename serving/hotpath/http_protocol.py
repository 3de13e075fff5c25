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
from typing import Any

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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` on a write-coalescing transport (one ``send`` per response instead of two)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the proxy stands in for the Transport uvicorn was given (it delegates every other attribute)
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
