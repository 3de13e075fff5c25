"""`centric pipeline run` on The Complete Journey: the first run, a rerun with no new data, and a run after one day.

    .venv/bin/python -m benchmarks.bench_pipeline [--customers N] [--primary hybrid_ltr] [--day-orders N]

Runs ``centric pipeline run`` three times, each a new process as a scheduler starts it, against a private
redis-server (ledger with appendfsync everysec), with the demo data as the base file:

1. **first run**: every stage (history validated from scratch, the base file replayed into the ledger);
2. **rerun, no new data**: what a scheduler's second call of the day costs (target ≤ 10 % of the first);
3. **one day of events**: ``--day-orders`` real baskets of the base's last four weeks posted again as the next day's
   orders (new order ids, the day after the base ends), with two views and a click per order, written to the stream
   in the service's format (target ≤ the first run).

Prints, per stage and run, the seconds and peak resident memory from the run reports, each run's wall time
(process start and imports included), the load average around each run, and the totals for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import redis

from benchmarks.machine import machine
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Fields, Keys
from training.pipeline.state import STAGES


def post_day(client: redis.Redis, keys: Keys, history: Path, orders: int, seed: int = 14) -> int:
    """XADD one day of events (real baskets re-posted the day after the history ends); return how many."""
    tx = pl.read_parquet(history / "transactions.parquet")
    end = tx.get_column("timestamp").max()
    recent = tx.filter(pl.col("timestamp") > end - dt.timedelta(days=28))  # type: ignore[operator]
    picked = recent.select("customer_id", "order_id").unique().sort("order_id").sample(n=orders, seed=seed)
    lines = recent.join(picked, on=["customer_id", "order_id"]).sort("order_id")
    day = (end + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)  # type: ignore[union-attr]
    pipe = client.pipeline(transaction=False)
    count = 0
    for n, (cid, oid, iid, qty, price) in enumerate(
        lines.select("customer_id", "order_id", "item_id", "quantity", "price").iter_rows()
    ):
        when = (day + dt.timedelta(seconds=n % 36_000)).isoformat()
        base = {"customer_id": cid, "item_id": iid, "timestamp": when, "channel": "web"}
        events = [{**base, "type": "purchase", "order_id": f"day1-{oid}", "quantity": qty, "price": price}]
        if n % 2 == 0:  # about two views and a click per order of four lines
            events += [{**base, "type": "view"}, {**base, "type": "click"}]
        for event in events:
            pipe.xadd(keys.events_stream(), {Fields.EVENT: orjson.dumps(event)})
            count += 1
    pipe.execute()
    return count


def _run(command: list[str], env: dict[str, str]) -> tuple[dict[str, Any], str, str]:
    before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if done.returncode != 0:
        raise SystemExit(f"pipeline run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    report["wall"] = wall
    return report, before, after


def main() -> None:
    """Run the three cycles and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=None, help="train on a sample (default: all 2,469)")
    parser.add_argument("--primary", default="hybrid_ltr")
    parser.add_argument("--day-orders", type=int, default=800, help="orders in the day of events (TCJ: ~740/day)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1] / "examples"
    runs: list[tuple[str, dict[str, Any], str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        server = EmbeddedRedis(home / "redis", appendfsync="everysec")
        url = server.start()
        try:
            client = redis.Redis.from_url(url)
            keys = Keys("benchpipe")
            command = [sys.executable, "-m", "training.cli", "pipeline", "run", "--json", "--transactions", "demo"]
            command += ["--work-dir", str(home / "work"), "--events-dir", str(home / "events")]
            command += ["--offers", str(root / "offers.toml"), "--loyalty", str(root / "loyalty.toml")]
            command += ["--primary", args.primary, *(["--customers", str(args.customers)] if args.customers else [])]
            env = {**os.environ, "CENTRIC_REDIS_URL": url, "CENTRIC_ENV": keys.env, "CENTRIC_HOME": str(home)}
            runs.append(("first run", *_run(command, env)))
            runs.append(("rerun, no new data", *_run(command, env)))
            posted = post_day(client, keys, home / "work" / "history" / "current", args.day_orders)
            runs.append((f"one day ({posted:,} events)", *_run(command, env)))
        finally:
            server.stop()
    command = "python -m benchmarks.bench_pipeline" + (f" --customers {args.customers}" if args.customers else "")
    print(f"machine: {machine()}; redis-server on the same machine; {os.cpu_count()} cores")
    print(f"command: {command} --primary {args.primary} --day-orders {args.day_orders}")
    print()
    print("| stage | " + " | ".join(name for name, *_ in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    for stage in STAGES:
        cells = []
        for _, report, _, _ in runs:
            s = next(x for x in report["stages"] if x["name"] == stage)
            if s["status"] == "skipped":
                cells.append("skipped")
            elif s["seconds"] is None:
                cells.append(s["status"])
            else:
                cells.append(f"{s['seconds']:.1f} s, {s['peak_memory_mb'] or 0:.0f} MiB")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    totals = [f"**{r['seconds']:.1f} s**, {r['status']}, peak {r['peak_memory_mb']:.0f} MiB" for _, r, _, _ in runs]
    print("| **total (run report)** | " + " | ".join(totals) + " |")
    print("| wall, process start included | " + " | ".join(f"{r['wall']:.1f} s" for _, r, _, _ in runs) + " |")
    print("| load average before → after | " + " | ".join(f"{b} → {a}" for _, _, b, a in runs) + " |")
    first = runs[0][1]["wall"]
    print()
    print(f"rerun / first (wall): {runs[1][1]['wall'] / first:.1%} (target ≤ 10 %)")
    print(f"one day / first (wall): {runs[2][1]['wall'] / first:.1%} (target ≤ 100 %)")


if __name__ == "__main__":
    main()
