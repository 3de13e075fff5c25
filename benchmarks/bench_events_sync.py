"""`centric events sync` throughput: events posted in the service's format, drained into a fresh event store.

    .venv/bin/python benchmarks/bench_events_sync.py [--events 200000] [--batch 20000]

Fills a private redis-server's stream with N events (one JSON field per entry, as ``POST /v1/events`` writes them;
3 customers' worth of realistic fields), then times ``sync_events`` from the first read to the last commit (files
fsynced, checkpoint renamed, stream trimmed). Prints a table to paste into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import orjson
import redis

from benchmarks.machine import machine
from recsys.events.store import EventStore
from recsys.events.sync import sync_events
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Fields, Keys
from training.pipeline.state import PeakMemory


def _fill(client: redis.Redis, keys: Keys, n: int) -> float:
    start = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    day = dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)
    for i in range(n):
        event = {
            "type": ("purchase", "view", "click", "impression")[i % 4],
            "customer_id": f"c{i % 50_000}",
            "item_id": f"i{(i * 7919) % 90_000}",
            "quantity": "1.0",
            "price": "2.49",
            "order_id": f"o{i // 4}",
            "channel": "web",
            "timestamp": (day + dt.timedelta(seconds=i % 86_400)).isoformat(),
        }
        pipe.xadd(keys.events_stream(), {Fields.EVENT: orjson.dumps(event)})
        if i % 10_000 == 9_999:
            pipe.execute()
            pipe = client.pipeline(transaction=False)
    pipe.execute()
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", appendfsync="everysec")
        server.start()
        try:
            client = redis.Redis.from_url(server.url or "")
            for run in range(args.repeat):
                keys = Keys(f"bench{run}")
                _fill(client, keys, args.events)
                store = EventStore(Path(tmp) / f"events{run}")
                PeakMemory.reset()  # the sync's own high-water mark, not the fill's
                result = sync_events(client, keys, store, batch=args.batch)
                peak = PeakMemory.peak_mb() or 0.0
                assert store.checkpoint().events == args.events and result.backlog == 0
                rate = result.events / result.seconds
                rows.append((run + 1, result.events, result.batches, result.seconds, rate, peak))
        finally:
            server.stop()
    print(f"machine: {machine()}; redis-server on the same machine; batch {args.batch:,}")
    print("command: .venv/bin/python benchmarks/bench_events_sync.py " + f"--events {args.events} --batch {args.batch}")
    print()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average at the end: {load}")
    print()
    print("| run | events | batches | seconds | events/s | peak RSS of the process during the sync (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for run, events, batches, seconds, rate, peak in rows:
        print(f"| {run} | {events:,} | {batches} | {seconds:.2f} | {rate:,.0f} | {peak:.0f} |")
    best = max(r[4] for r in rows)
    median = sorted(r[4] for r in rows)[len(rows) // 2]
    print(f"\nbest {best:,.0f} events/s, median {median:,.0f} (target ≥ 50,000 on 2 cores)")


if __name__ == "__main__":
    main()
