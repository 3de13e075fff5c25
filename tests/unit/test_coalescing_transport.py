"""The write-coalescing transport: one socket write per loop turn, close flushes, abort drops."""

from __future__ import annotations

import asyncio

from serving.hotpath.http_protocol import _CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def _run(scenario):
    async def main():
        raw = RecordingTransport()
        t = _CoalescingTransport(raw, asyncio.get_running_loop())
        return raw, await scenario(t, raw)

    return asyncio.run(main())


def test_writes_of_one_loop_turn_leave_in_one_write_in_order():
    async def scenario(t, raw):
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.write(b"{}")
        t.write(b"")  # an empty body adds nothing
        seen_before_turn = list(raw.writes)
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)
        return seen_before_turn

    raw, seen_before_turn = _run(scenario)
    assert seen_before_turn == []
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", b"next"]


def test_close_sends_what_is_gathered_first_and_abort_drops_it():
    async def closing(t, raw):
        t.write(b"head")
        t.write(b"body")
        t.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        return raw.closed

    raw, closed = _run(closing)
    assert raw.writes == [b"headbody"] and closed

    async def aborting(t, raw):
        t.write(b"head")
        t.abort()
        await asyncio.sleep(0)
        return raw.aborted

    raw, aborted = _run(aborting)
    assert raw.writes == [] and aborted


def test_other_calls_reach_the_real_transport():
    async def scenario(t, raw):
        return t.get_extra_info("sockname"), t.is_closing()

    _, (sockname, closing) = _run(scenario)
    assert sockname == ("127.0.0.1", 8000) and closing is False


def test_a_flush_after_the_peer_went_away_is_dropped_quietly():
    async def scenario(t, raw):
        t.write(b"late")
        raw.closed = True  # the connection was lost before the loop turn ended
        await asyncio.sleep(0)

    raw, _ = _run(scenario)
    assert raw.writes == []
