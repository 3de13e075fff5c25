"""Soak: mixed reads and loyalty writes at 50 % of measured capacity for 10 minutes; errors, RSS and latency over time.

Starts a private Redis (AOF, ``appendfsync always`` as the service's default), publishes a synthetic snapshot
(20,000 customers × 20 recommendations, profiles, 2,000 items with similar items), creates 8 write keys (the
per-key rate limit stays on: 1,000 requests/s each by default), and serves the API under uvicorn with the
service's HTTP protocol (1 worker). Then:

1. capacity: a closed loop of 32 keep-alive connections sends the mix as fast as it can for ``--capacity-s``;
2. soak: an open loop sends the mix at 50 % of that rate for ``--minutes``; each request's latency is measured from
   the time it was due (so a stall is not hidden by the generator waiting), in windows of ``--window-s``.

Mix: 70 % ``GET …/recommendations?k=10``, 10 % ``GET …/profile``, 10 % ``GET /v1/items/…/similar?k=10``,
10 % ``POST …/loyalty/earn`` (a new order each time). An error is any status other than 200, or a failed
connection. RSS is the uvicorn process's resident memory, sampled each window.

    nice -n 10 .venv/bin/python -m benchmarks.bench_soak                  # 10 minutes
    nice -n 10 .venv/bin/python -m benchmarks.bench_soak --minutes 1      # a quick look

Prints a markdown table (one row per window) and the summary, and writes the plot to ``--plot``
(default ``benchmarks/soak.png``). The load generator shares the machine's cores with the server and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from benchmarks import harness
from benchmarks.bench_publish import make_artifacts
from benchmarks.bench_serving import add_similar_and_fallbacks
from benchmarks.machine import machine
from recsys.store.connection import sync_client
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from serving.auth import create_api_key
from serving.hotpath.http_protocol import PROTOCOL
from training.jobs.publish import run_publish

ROOT = Path(__file__).resolve().parents[1]
ENV = "soak"
CUSTOMERS, ITEMS, KEYS = 20_000, 2_000, 8
IDLE_S = 3.0  # a pooled connection idle longer is not reused (the server's keep-alive timeout is 5 s)


@dataclass
class Window:
    """What happened in one window of the soak."""

    start_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    rss_mb: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)  # what the errors were (status, or "connection")


class Mix:
    """The requests of the mix, as raw HTTP/1.1 bytes (the generator must cost little CPU)."""

    def __init__(self, tokens: list[str], seed: int = 16) -> None:
        self.tokens = tokens
        self.rng = random.Random(seed)
        self.orders = 0
        self.run = f"{os.getpid()}-{int(time.time())}"

    def next(self) -> bytes:
        rng = self.rng
        auth = f"Authorization: Bearer {rng.choice(self.tokens)}\r\n"
        customer = f"C{rng.randrange(CUSTOMERS):07d}"
        roll = rng.random()
        if roll < 0.7:
            line = f"GET /v1/customers/{customer}/recommendations?k=10 HTTP/1.1\r\n"
        elif roll < 0.8:
            line = f"GET /v1/customers/{customer}/profile HTTP/1.1\r\n"
        elif roll < 0.9:
            line = f"GET /v1/items/I{rng.randrange(ITEMS):06d}/similar?k=10 HTTP/1.1\r\n"
        else:
            self.orders += 1
            body = f'{{"order_id":"soak-{self.run}-{self.orders}","amount":"{rng.randrange(1, 200)}.50"}}'
            return (
                f"POST /v1/customers/{customer}/loyalty/earn HTTP/1.1\r\nHost: soak\r\n{auth}"
                f"Idempotency-Key: soak-{self.run}-{self.orders}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        return (line + f"Host: soak\r\n{auth}\r\n").encode()


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a request and reads its whole answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def send(self, request: bytes) -> int:
        """Return the answer's status; reconnects after a close."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def capacity(port: int, mix: Mix, seconds: float, connections: int = 32) -> tuple[float, int]:
    """Closed loop: return (requests/s completed, errors)."""
    done, errors = 0, 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done, errors
        conn = Connection(port)
        while time.perf_counter() < deadline:
            try:
                status = await conn.send(mix.next())
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                await conn.close()
                continue
            done += 1
            errors += status != 200

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    return done / (time.perf_counter() - start), errors


async def soak(port: int, mix: Mix, rate: float, seconds: float, window_s: float, pid: int) -> list[Window]:
    """Open loop at ``rate`` requests/s for ``seconds``; return the windows."""
    process = psutil.Process(pid)
    idle: list[Connection] = []
    windows: list[Window] = []
    start = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()

    def window_at(t: float) -> Window:
        index = int((t - start) // window_s)
        while len(windows) <= index:
            windows.append(Window(start_s=len(windows) * window_s))
        return windows[index]

    async def one(due: float) -> None:
        conn = idle.pop() if idle else Connection(port)
        if conn.writer is not None and time.perf_counter() - conn.last_used > IDLE_S:
            await conn.close()  # as HTTP clients do: never reuse a connection the server may be closing
        try:
            status = await conn.send(mix.next())
        except (OSError, asyncio.IncompleteReadError):
            window = window_at(due)
            window.errors += 1
            window.statuses["connection"] = window.statuses.get("connection", 0) + 1
            await conn.close()
            return
        window = window_at(due)
        conn.last_used = time.perf_counter()
        window.latencies_ms.append((time.perf_counter() - due) * 1000)
        if status != 200:
            window.errors += 1
            window.statuses[str(status)] = window.statuses.get(str(status), 0) + 1
        idle.append(conn)

    sent = 0
    next_sample = start
    while (now := time.perf_counter()) - start < seconds:
        due_count = int((now - start) * rate) - sent
        for i in range(due_count):
            due = start + (sent + i) / rate
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent += max(due_count, 0)
        if now >= next_sample:
            window_at(now).rss_mb = process.memory_info().rss / 2**20
            next_sample += window_s
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    for conn in idle:
        await conn.close()
    return windows


def table(windows: list[Window]) -> list[str]:
    rows = ["| minute | requests/s | errors | p50 ms | p95 ms | p99 ms | max ms | server RSS MB |", "|" + "---:|" * 8]
    for w in windows:
        lat = np.array(w.latencies_ms) if w.latencies_ms else np.array([np.nan])
        span = WINDOW_S
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        rows.append(
            f"| {w.start_s / 60:.1f} | {len(w.latencies_ms) / span:,.0f} | {w.errors} | {p50:.1f} | {p95:.1f} "
            f"| {p99:.1f} | {lat.max():.0f} | {w.rss_mb:.1f} |"
        )
    return rows


def plot(windows: list[Window], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [w.start_s / 60 for w in windows]
    pct = np.array([np.percentile(w.latencies_ms or [np.nan], [50, 95, 99]) for w in windows])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for column, label in enumerate(("p50", "p95", "p99")):
        ax1.plot(minutes, pct[:, column], marker=".", label=label)
    ax1.set_ylabel("latency (ms)")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title(title, fontsize=9)
    ax2.plot(minutes, [w.rss_mb for w in windows], marker=".", color="tab:gray")
    ax2.set_ylabel("server RSS (MB)")
    ax2.set_xlabel("minute of the soak")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


WINDOW_S = 30.0


def main() -> None:
    global WINDOW_S
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--capacity-s", type=float, default=20.0)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--share", type=float, default=0.5, help="fraction of the measured capacity to send")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "soak.png")
    args = parser.parse_args()
    WINDOW_S = args.window_s
    with tempfile.TemporaryDirectory(prefix="centric-soak-") as tmp:
        work = Path(tmp)
        server = EmbeddedRedis(work / "home")
        url = server.start()
        try:
            art = work / "artifacts"
            art.mkdir()
            make_artifacts(art, CUSTOMERS, 20, ITEMS, profiles=True)
            add_similar_and_fallbacks(art, ITEMS)
            client = sync_client(url)
            keys = Keys(ENV)
            run_publish(client, keys, art)
            tokens = [create_api_key(client, keys, "write", name=f"soak-{i}") for i in range(KEYS)]
            env = {
                **os.environ,
                "CENTRIC_REDIS_URL": url,
                "CENTRIC_ENV": ENV,
                "CENTRIC_DASHBOARD_WARMUP": "false",
                "CENTRIC_RATE_LIMIT_PER_S": os.environ.get("CENTRIC_RATE_LIMIT_PER_S", "1000"),
            }
            with harness.serving("serving.app:create_app", env, uvicorn_args=["--http", PROTOCOL]) as api:
                mix = Mix(tokens)
                load_before = os.getloadavg()
                rps_max, cap_errors = asyncio.run(capacity(api.port, mix, args.capacity_s))
                rate = rps_max * args.share
                print(f"capacity {rps_max:,.0f} requests/s ({cap_errors} errors); soak at {rate:,.0f} requests/s")
                windows = asyncio.run(soak(api.port, mix, rate, args.minutes * 60, args.window_s, api.proc.pid))
                load_after = os.getloadavg()
            client.close()
        finally:
            server.stop()
    total = sum(len(w.latencies_ms) for w in windows)
    errors = sum(w.errors for w in windows)
    all_lat = np.concatenate([np.array(w.latencies_ms) for w in windows if w.latencies_ms])
    first = next(w.rss_mb for w in windows if w.rss_mb)
    last = windows[-1].rss_mb or windows[-2].rss_mb
    growth = 100 * (last - first) / first
    title = (
        f"soak {args.minutes:g} min at {rate:,.0f} req/s ({args.share:.0%} of {rps_max:,.0f}); "
        f"{errors} errors; RSS {first:.0f}→{last:.0f} MB"
    )
    plot(windows, args.plot, title)
    print(f"machine: {machine()}")
    print(
        f"load average before/after: {' '.join(f'{x:.2f}' for x in load_before)} / "
        f"{' '.join(f'{x:.2f}' for x in load_after)}"
    )
    print("command: python -m benchmarks.bench_soak " + " ".join(sys.argv[1:]))
    print(f"data: {CUSTOMERS:,} customers x 20 recommendations, profiles, {ITEMS:,} items; {KEYS} write keys\n")
    print("\n".join(table(windows)))
    p50, p95, p99 = np.percentile(all_lat, [50, 95, 99])
    head = ["capacity req/s", "soak req/s", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"]
    print("\n| " + " | ".join([*head, "RSS first→last MB", "RSS growth"]) + " |")
    print("|" + "---:|" * 9)
    print(
        f"| {rps_max:,.0f} | {total / (args.minutes * 60):,.0f} | {total:,} | {errors} | {p50:.1f} | {p95:.1f} | "
        f"{p99:.1f} | {first:.1f} → {last:.1f} | {growth:+.1f} % |"
    )
    kinds: dict[str, int] = {}
    for w in windows:
        for status, n in w.statuses.items():
            kinds[status] = kinds.get(status, 0) + n
    print(f"errors by status: {kinds or 'none'}")
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
