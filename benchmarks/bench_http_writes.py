"""Loyalty earn writes through uvicorn: stock httptools protocol against ``serving.hotpath.http_protocol`` (one
write per response).

Each round starts a fresh embedded Redis (AOF, appendfsync always), serves the API with ``uvicorn --workers 2`` on
one protocol, drives it with ``wrk -t2 -c64`` for ``--seconds`` and reads the CPU time of the two workers, Redis and
wrk from ``/proc``; the protocols alternate, so slow drift of the machine hits both. Prints writes/s and CPU per
acknowledged write for each run, then the median of each protocol.

    .venv/bin/python -m benchmarks.bench_http_writes [--rounds 4] [--seconds 15] [--quick]

Needs ``wrk`` (Debian: ``apt-get install wrk``) and Linux ``/proc``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from benchmarks import bench_loyalty, harness
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from serving.auth import create_api_key
from serving.hotpath.http_protocol import PROTOCOL

ROOT = Path(__file__).resolve().parents[1]

PROTOCOLS = {"stock httptools": "httptools", "one write per response": PROTOCOL}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def one_run(http: str, seconds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="centric-bench-http-") as tmp, EmbeddedRedis(Path(tmp)) as server:
        url = server.url or server.start()
        client = redis.Redis.from_url(url)
        redis_pid = int(client.info("server")["process_id"])
        keys = Keys("bench-http")
        token = create_api_key(client, keys, "write", name="bench")
        env = bench_loyalty.server_env(url, keys.env)
        with harness.serving("serving.app:create_app", env, workers=2, uvicorn_args=["--http", http]) as api:
            workers = children(api.proc.pid)
            script = Path(tmp) / "earn.lua"
            script.write_text(bench_loyalty.WRK_LUA.replace("TOKEN", token))
            before = sum(cpu_seconds(p) for p in workers), cpu_seconds(redis_pid)
            wrk = subprocess.Popen(
                ["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", str(script), api.base], stdout=subprocess.PIPE, text=True
            )
            time.sleep(seconds - 0.5)
            wrk_cpu = cpu_seconds(wrk.pid)
            out = wrk.communicate()[0]
            after = sum(cpu_seconds(p) for p in workers), cpu_seconds(redis_pid)
        if "Non-2xx" in out:
            raise SystemExit(f"wrk saw refused writes:\n{out}")
        writes = sum(client.llen(keys.loyalty_entries(c.decode())) for c in client.smembers(keys.loyalty_customers()))
    return {
        "writes_s": writes / seconds,
        "workers_us": 1e6 * (after[0] - before[0]) / writes,
        "redis_us": 1e6 * (after[1] - before[1]) / writes,
        "wrk_us": 1e6 * wrk_cpu / writes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="runs per protocol (alternating)")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per run")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 8 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 8
    results: dict[str, list[dict[str, float]]] = {name: [] for name in PROTOCOLS}
    print(f"machine: {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    print(
        f"command: .venv/bin/python -m benchmarks.bench_http_writes --rounds {args.rounds} --seconds {args.seconds}\n"
    )
    print("| round | protocol | writes/s | workers CPU µs/write | Redis CPU µs/write | wrk CPU µs/write |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in range(1, args.rounds + 1):
        for name, http in PROTOCOLS.items():
            row = one_run(http, args.seconds)
            results[name].append(row)
            print(
                f"| {r} | {name} | {row['writes_s']:,.0f} | {row['workers_us']:.0f} | {row['redis_us']:.0f} | "
                f"{row['wrk_us']:.0f} |",
                flush=True,
            )
    for name, rows in results.items():
        med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
        print(
            f"| median | {name} | {med['writes_s']:,.0f} | {med['workers_us']:.0f} | {med['redis_us']:.0f} | "
            f"{med['wrk_us']:.0f} |"
        )
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
