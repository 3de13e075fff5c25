"""Loyalty ledger: acknowledged durable writes/s (appendfsync always), directly and through the HTTP API.

Run: .venv/bin/python -m benchmarks.bench_loyalty [--quick]
Starts its own embedded Redis (AOF, appendfsync always) in a temp dir, and uvicorn for the API rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import redis

from benchmarks import harness
from benchmarks.machine import cpu_name
from recsys.loyalty import ops
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from serving.auth import create_api_key
from serving.hotpath.http_protocol import PROTOCOL

ROOT = Path(__file__).resolve().parents[1]
PROGRAM_PATH = ROOT / "examples" / "loyalty.toml"
# as `centric serve` runs it (one write per response); CENTRIC_BENCH_PLAIN_HTTP=1 measures plain uvicorn instead
HTTP = [] if os.environ.get("CENTRIC_BENCH_PLAIN_HTTP") else ["--http", PROTOCOL]
NOW = datetime(2025, 5, 1, tzinfo=UTC)


def direct_sequential(client: redis.Redis, n: int) -> float:
    ledger = RedisLedger(client, Keys("bench-seq"), load_program(PROGRAM_PATH))
    t = time.perf_counter()
    for i in range(n):
        ledger.earn(f"c{i % 1000}", f"o{i}", Decimal(25), [], NOW, f"k{i}")
    return n / (time.perf_counter() - t)


def direct_pipelined(client: redis.Redis, n: int, batch: int = 500) -> float:
    keys, program = Keys("bench-pipe"), load_program(PROGRAM_PATH)
    ledger = RedisLedger(client, keys, program)
    t = time.perf_counter()
    for start in range(0, n, batch):
        calls = [
            (ops.earn_call(program, keys, f"c{i % 1000}", f"o{i}", Decimal(25), [], NOW, f"k{i}"), f"c{i % 1000}")
            for i in range(start, min(start + batch, n))
        ]
        ledger.run_many(calls)
    return n / (time.perf_counter() - t)


async def _api(base: str, token: str, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30
    ) as http:
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                r = await http.post(
                    f"/v1/customers/c{i % 1000}/loyalty/earn",
                    json={"order_id": f"o{i}", "amount": "25"},
                    headers={"Idempotency-Key": f"k{i}"},
                )
                assert r.status_code == 200, r.text

        await http.post(
            "/v1/customers/warm/loyalty/earn", json={"order_id": "w", "amount": "1"}, headers={"Idempotency-Key": "w"}
        )
        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - t)


WRK_LUA = """
local tid = 0
local threads = {}
setup = function(thread) thread:set("tid", tid); tid = tid + 1 end
counter = 0
request = function()
  counter = counter + 1
  local id = tid .. "-" .. counter
  return wrk.format("POST", "/v1/customers/c" .. (counter % 1000) .. "-" .. tid .. "/loyalty/earn",
    {["Authorization"] = "Bearer TOKEN", ["Content-Type"] = "application/json", ["Idempotency-Key"] = "k" .. id},
    '{"order_id":"o' .. id .. '","amount":"25"}')
end
"""


def server_env(url: str, env_name: str) -> dict[str, str]:
    """The environment of a uvicorn serving the example loyalty program from ``url``."""
    return {
        **os.environ,
        "CENTRIC_REDIS_URL": url,
        "CENTRIC_ENV": env_name,
        "CENTRIC_LOYALTY_PROGRAM": str(PROGRAM_PATH),
    }


def through_wrk(url: str, client: redis.Redis, seconds: int, connections: int) -> tuple[int, float]:
    """Drive earn writes with wrk (unique idempotency keys); return (acknowledged 200s, writes/s)."""
    keys = Keys("bench-wrk")
    token = create_api_key(client, keys, "write", name="bench")
    with harness.serving("serving.app:create_app", server_env(url, keys.env), workers=2, uvicorn_args=HTTP) as server:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_LUA.replace("TOKEN", token))
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", f.name, server.base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    total = 0
    for cid in client.smembers(keys.loyalty_customers()):
        total += client.llen(keys.loyalty_entries(cid.decode()))
    bad = [line for line in out.splitlines() if "Non-2xx" in line]
    if bad:
        raise SystemExit(f"wrk saw refused writes: {bad}")
    return total, total / seconds


def through_api(url: str, client: redis.Redis, n: int, concurrency: int) -> float:
    keys = Keys("bench-api")
    token = create_api_key(client, keys, "write", name="bench")
    with harness.serving("serving.app:create_app", server_env(url, keys.env), uvicorn_args=HTTP) as server:
        return asyncio.run(_api(server.base, token, n, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer writes")
    args = parser.parse_args()
    n = 2000 if args.quick else 20000
    with tempfile.TemporaryDirectory() as home:
        server = EmbeddedRedis(Path(home), appendfsync="always")
        url = server.start()
        client = redis.Redis.from_url(url)
        try:
            fsync = client.config_get("appendfsync")["appendfsync"]
            rows = [
                ("direct, sequential (1 client, 1 round trip each)", n, direct_sequential(client, n)),
                ("direct, pipelined (500 scripts per round trip)", n * 5, direct_pipelined(client, n * 5)),
                (
                    "HTTP API, 1 uvicorn worker, 32 concurrent httpx clients (same process drives)",
                    min(n, 2000),
                    through_api(url, client, min(n, 2000), 32),
                ),
            ]
            if shutil.which("wrk"):
                count, rate = through_wrk(url, client, 5 if args.quick else 15, 64)
                rows.append(("HTTP API, uvicorn --workers 2, wrk -t2 -c64 (entries counted in Redis)", count, rate))
        finally:
            client.close()
            server.stop()
    print(f"machine: {os.cpu_count()} cores, {cpu_name()}; redis appendonly yes, appendfsync {fsync}")
    print(f"command: .venv/bin/python -m benchmarks.bench_loyalty{' --quick' if args.quick else ''}\n")
    print("| path | acknowledged earn writes | writes/s |")
    print("|---|---:|---:|")
    for name, count, rate in rows:
        print(f"| {name} | {count:,} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
