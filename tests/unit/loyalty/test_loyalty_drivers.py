"""The two drivers of the loyalty flows (``drive`` sync, ``adrive`` async) run a flow the same way.

A flow yields batches and gets their replies back; an error raised while sending a batch is raised inside the
flow (a redeem decides from it whether to release its stock), and a ``shield`` batch completes even when the
request that started it is cancelled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from recsys.loyalty.flow import Batch, Flow, adrive, drive


class Lost(Exception):
    """A send that failed (a lost connection)."""


def _flow(log: list[str]) -> Flow[str]:
    first = yield Batch((("GET", "a"),))
    log.append(f"got {first}")
    try:
        yield Batch((("GET", "boom"),))
    except Lost:
        log.append("lost")
        yield Batch((("DEL", "a"),), shield=True)
        raise
    return "unreachable"


def _send(batch: Batch) -> list[Any]:
    if batch.commands[0][1] == "boom":
        raise Lost("connection lost")
    return [batch.commands[0][0]]


async def _asend(batch: Batch) -> list[Any]:
    return _send(batch)


def test_both_drivers_return_the_result_of_the_flow() -> None:
    def flow() -> Flow[list[Any]]:
        a = yield Batch((("GET", "a"),))
        b = yield Batch((("SET", "b"),))
        return a + b

    assert drive(_send, flow()) == asyncio.run(adrive(_asend, flow())) == ["GET", "SET"]


def test_a_send_error_is_raised_inside_the_flow_by_both_drivers() -> None:
    sync_log: list[str] = []
    with pytest.raises(Lost):
        drive(_send, _flow(sync_log))
    async_log: list[str] = []
    with pytest.raises(Lost):
        asyncio.run(adrive(_asend, _flow(async_log)))
    assert sync_log == async_log == ["got ['GET']", "lost"]


def test_a_shield_batch_completes_when_the_caller_is_cancelled() -> None:
    sent: list[str] = []

    def flow() -> Flow[None]:
        yield Batch((("RELEASE", "stock"),), shield=True)

    async def main() -> None:
        started, proceed, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def slow_send(batch: Batch) -> list[Any]:
            started.set()
            await proceed.wait()
            sent.append(batch.commands[0][0])
            done.set()
            return [1]

        task = asyncio.create_task(adrive(slow_send, flow()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proceed.set()  # the request is gone; its shielded send still finishes
        await asyncio.wait_for(done.wait(), 5)

    asyncio.run(main())
    assert sent == ["RELEASE"]
