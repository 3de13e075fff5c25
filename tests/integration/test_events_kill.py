"""Kill test: ``centric events sync`` killed with SIGKILL at random points still stores every event exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from recsys.events.store import EventStore
from recsys.exceptions import StoreUnavailable
from recsys.store.keys import Keys
from serving.services import events as events_service
from tests.helpers.events import post_events


def _batch(start: int, size: int) -> list[dict]:
    return [
        {"type": "purchase", "customer_id": f"c{i % 11}", "item_id": f"i{i}", "price": 1.0, "order_id": f"o{i}"}
        for i in range(start, start + size)
    ]


@pytest.mark.slow
def test_sync_killed_five_times_keeps_every_event_once(
    redis_url: str, redis_client: redis.Redis, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_service, "BACKLOG_CHECK_S", 0.0)
    posted = 0
    for n in range(40):
        posted += post_events(redis_url, keys, _batch(n * 500, 500), idempotency_key=f"b{n}")
    # a batch retried after a 503 with its Idempotency-Key is recorded once
    posted_again = post_events(redis_url, keys, _batch(0, 500), idempotency_key="b0")
    assert posted_again == 500 and redis_client.xlen(keys.events_stream()) == posted
    # with a very low backlog bound, new events are refused, never trimmed unread
    with pytest.raises(StoreUnavailable):
        post_events(redis_url, keys, _batch(99_000, 5), backlog_limit=10)
    store_dir = tmp_path / "events"
    env = {**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env}
    command = [sys.executable, "-m", "training.cli", "events", "sync", "--store", str(store_dir), "--batch", "300"]
    rng = random.Random(14)
    # five random points inside the work, not in the time: a kill timed by the clock alone mostly landed before the
    # first batch or after the last one (then a rerun had nothing left to lose)
    targets = sorted(rng.sample(range(1, posted * 3 // 4), 5))
    for target in targets:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while EventStore(store_dir).checkpoint().events < target:
            assert proc.poll() is None, f"sync ended before it stored {target} events"
            assert time.monotonic() < deadline, f"sync never stored {target} events"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.005))  # anywhere in the next batch: its write, its checkpoint, its trim
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored = EventStore(store_dir).checkpoint().events
        assert target <= stored < posted, (target, stored)  # killed in the middle of the work
        assert redis_client.xlen(keys.events_stream()) >= posted - stored  # nothing unsynced was trimmed
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    frame = EventStore(store_dir).scan().collect()
    assert frame.height == posted == 20_000
    assert frame.get_column("stream_id").n_unique() == posted and frame.get_column("item_id").n_unique() == posted
    assert redis_client.xlen(keys.events_stream()) == 0
