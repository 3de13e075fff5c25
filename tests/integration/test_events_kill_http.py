"""Kill test through a real service: events posted over HTTP to a ``centric serve`` process with a very low backlog
bound, batches refused with 503 retried with their Idempotency-Key, and ``centric events sync`` killed with SIGKILL
at five random points; the store then holds every event exactly once and nothing unsynced was ever trimmed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from recsys.events.store import EventStore
from recsys.store.keys import Keys
from tests.helpers.http import bearer, uvicorn_server

BATCHES, SIZE, LIMIT = 24, 250, 1_000  # 6,000 events; the service refuses new batches at 1,000 unsynced


def _batch(n: int) -> list[dict]:
    return [
        {"type": "purchase", "customer_id": f"c{i % 13}", "item_id": f"i{i}", "price": 1.0, "order_id": f"o{i}"}
        for i in range(n * SIZE, (n + 1) * SIZE)
    ]


@pytest.mark.slow
def test_events_over_http_with_503s_and_five_killed_syncs_are_stored_exactly_once(
    redis_url: str, redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    store_dir = tmp_path / "events"
    env = {**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env}
    command = [sys.executable, "-m", "training.cli", "events", "sync", "--store", str(store_dir), "--batch", "100"]
    stream = keys.events_stream()
    rng = random.Random(14)
    kills: list[tuple[int, int, int]] = []
    refused = 0

    def stored() -> int:
        return EventStore(store_dir).checkpoint().events

    def sync(kill: bool) -> None:
        """Drain the stream; with ``kill``, SIGKILL the sync at a random point of the work instead."""
        if not kill:
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=120)
            return
        before, waiting = stored(), redis_client.xlen(stream)
        target = before + rng.randrange(1, max(2, waiting * 3 // 4))
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while stored() < target:
            assert proc.poll() is None, f"sync ended before it stored {target} events"
            assert time.monotonic() < deadline, f"sync never stored {target} events"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.005))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append((before, stored(), before + waiting))

    with uvicorn_server(redis_url, keys, CENTRIC_EVENTS_BACKLOG_LIMIT=str(LIMIT)) as base:
        headers = bearer(redis_url, keys, "admin")
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            n = 0
            while n < BATCHES:
                key = {"Idempotency-Key": f"batch-{n}"}
                answer = http.post("/v1/events", json={"events": _batch(n)}, headers=key)
                if answer.status_code == 503:  # the backlog bound: sync (killed, five times), wait, retry as is
                    refused += 1
                    assert "retry the batch" in answer.json()["detail"]
                    sync(kill=len(kills) < 5)
                    time.sleep(1.1)  # the service reads the backlog at most once a second
                    continue
                assert answer.status_code == 202 and answer.json()["accepted"] == SIZE, answer.text
                if n == 3:  # a retry of a batch that was recorded (its answer lost): recorded once
                    again = http.post("/v1/events", json={"events": _batch(n)}, headers=key)
                    assert again.status_code == 202, again.text
                n += 1
                time.sleep(0.35)  # a client's pace: the service rereads the backlog at most once a second
                # nothing unsynced is ever trimmed: the stream holds at least what the store lacks
                assert redis_client.xlen(stream) >= SIZE * n - stored()
    sync(kill=False)
    assert refused >= 5 and len(kills) == 5
    assert all(before < after < end for before, after, end in kills), kills  # each cut the work short
    frame = EventStore(store_dir).scan().collect()
    assert frame.height == SIZE * BATCHES
    assert frame.get_column("stream_id").n_unique() == frame.get_column("item_id").n_unique() == SIZE * BATCHES
    assert redis_client.xlen(stream) == 0
