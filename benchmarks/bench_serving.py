"""Serving load benchmark: a >= 1M-customer snapshot, uvicorn × 2 workers, wrk on loopback.

Measures, in one run and on one machine: (a) a reference minimal FastAPI endpoint doing one Redis GET
of a 1 KB value, (b) ``/v1/customers/{id}/recommendations``, (c) ``/profile``, (d) ``/items/{id}/similar``
— each served by uvicorn with 2 workers — first at maximum throughput (wrk, 64 connections), then at
50 % of (a)'s maximum rate (wrk with a per-connection exponential think time, which approximates an
open-loop load of that rate; the achieved rate is reported). Random customer / item ids per request.
Also (b) with Python's default GC, to show what ``gc.freeze()`` + a higher gen-0 threshold buy, and (b) on
uvicorn's stock httptools protocol, to show what one write per response buys (``serving/hotpath/http_protocol.py``;
Centric runs as ``centric serve`` runs it, the reference (a) on stock uvicorn), and the reference on that protocol
too, for a like-for-like ratio. "50 % of (a)" always means 50 % of the stock reference's maximum.

    .venv/bin/python -m benchmarks.bench_serving            # 1M customers, 10 s per run
    .venv/bin/python -m benchmarks.bench_serving --quick    # 1M customers, 5 s per run

Needs ``wrk`` (Debian: ``apt-get install wrk``). The load generator shares the 2 cores with the
server processes and Redis, as in the issue's setup.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import redis

from benchmarks import harness
from benchmarks.bench_publish import cpu_name, make_artifacts
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from serving.auth import create_api_key
from serving.hotpath.http_protocol import PROTOCOL
from training.jobs.publish import run_publish

ROOT = Path(__file__).resolve().parents[1]

ENV = "bench"

LUA = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local n, kind, think = %(n)d, "%(kind)s", %(think_ms)f
request = function()
  local path
  if kind == "ref" then path = "/ref"
  elseif kind == "recs" then path = string.format("/v1/customers/C%%07d/recommendations?k=10", math.random(0, n - 1))
  elseif kind == "profile" then path = string.format("/v1/customers/C%%07d/profile", math.random(0, n - 1))
  else path = string.format("/v1/items/I%%06d/similar?k=10", math.random(0, %(items)d - 1)) end
  return wrk.format("GET", path)
end
if think > 0 then
  delay = function() return -math.log(1 - math.random()) * think end
end
"""


def add_similar_and_fallbacks(directory: Path, items: int, k: int = 20, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    ids = np.array([f"I{i:06d}" for i in range(items)])
    pl.DataFrame(
        {
            "item_id": np.repeat(ids, k),
            "similar_item_id": ids[rng.integers(0, items, items * k)],
            "rank": np.tile(np.arange(1, k + 1), items).astype(np.int32),
            "score": np.tile(np.linspace(1, 0.1, k), items).astype(np.float32),
        }
    ).write_parquet(directory / "similar_items.parquet")
    pl.DataFrame(
        {
            "list": ["popular"] * 50 + ["trending"] * 50,
            "item_id": list(ids[:50]) + list(ids[50:100]),
            "rank": list(range(1, 51)) * 2,
            "score": [float(50 - i) for i in range(50)] * 2,
        }
    ).write_parquet(directory / "fallbacks.parquet")


def wrk(
    port: int, kind: str, *, n: int, items: int, seconds: int, connections: int, header: str, rate: float | None = None
) -> dict[str, float]:
    think_ms = 0.0
    if rate:
        # Each connection waits ~connections/rate between requests (exponential), so the total approximates `rate`.
        think_ms = 1000.0 * connections / rate
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % {"n": n, "kind": kind, "think_ms": think_ms, "items": items})
        script = f.name
    cmd = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script,
        "-H",
        header,
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": errors.group(1) if errors else "",
    }  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per run instead of 10")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    seconds = 5 if args.quick else 10
    tmp = Path(tempfile.mkdtemp(prefix="centric-bench-serving-"))
    server = EmbeddedRedis(tmp / "home", appendfsync="everysec")
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        keys = Keys(ENV)
        art = tmp / "art"
        art.mkdir()
        t = time.perf_counter()
        make_artifacts(art, args.customers, 20, args.items, profiles=True)
        add_similar_and_fallbacks(art, args.items)
        summary = run_publish(client, keys, art)
        print(
            f"snapshot {summary['version']}: {summary['counts']} (built + published in "
            f"{time.perf_counter() - t:.0f} s)",
            file=sys.stderr,
        )
        client.set("bench:reference:1kb", os.urandom(1024))
        header = f"Authorization: Bearer {create_api_key(client, keys, 'read', name='bench')}"
        env = {
            **os.environ,
            "CENTRIC_REDIS_URL": url,
            "CENTRIC_ENV": ENV,
        }
        # (app, uvicorn --http): Centric as `centric serve` runs it (one write per response), the reference on
        # stock uvicorn
        apps = {
            "ref": ("benchmarks.serving_apps:create_reference_app", "httptools"),
            "centric": ("serving.app:create_app", PROTOCOL),
            "centric_default_gc": ("benchmarks.serving_apps:create_app_default_gc", PROTOCOL),
            "centric_plain_http": ("serving.app:create_app", "httptools"),
            "ref_coalescing": ("benchmarks.serving_apps:create_reference_app", PROTOCOL),
        }
        results: dict[str, dict[str, float]] = {}
        plan = [
            ("ref", [("ref", "(a) reference: 1 Redis GET of 1 KB")]),
            ("centric", [("recs", "(b) recommendations"), ("profile", "(c) profile"), ("similar", "(d) similar")]),
            ("centric_default_gc", [("recs", "(b) recommendations, default GC")]),
            ("centric_plain_http", [("recs", "(b) recommendations, stock uvicorn httptools protocol")]),
            ("ref_coalescing", [("ref", "(a) reference, on Centric's one-write protocol (not the baseline)")]),
        ]
        ref_max = None
        for app_name, endpoints in plan:
            app, http = apps[app_name]
            # the reference app has no /healthz: ready when the port accepts connections
            uvicorn_args = ["--loop", "uvloop", "--http", http]
            with harness.serving(app, env, workers=args.workers, uvicorn_args=uvicorn_args, ready_path=None) as api:
                port = api.port
                for kind, label in endpoints:
                    wrk(
                        port, kind, n=args.customers, items=args.items, seconds=2, connections=16, header=header
                    )  # warm-up
                    peak = wrk(
                        port,
                        kind,
                        n=args.customers,
                        items=args.items,
                        seconds=seconds,
                        connections=args.connections,
                        header=header,
                    )
                    if app_name == "ref":
                        ref_max = peak["rps"]
                    assert ref_max is not None
                    half = wrk(
                        port,
                        kind,
                        n=args.customers,
                        items=args.items,
                        seconds=seconds,
                        connections=32,
                        header=header,
                        rate=ref_max / 2,
                    )
                    results[label] = {
                        "max_rps": peak["rps"],
                        "max_p99": peak["p99"],
                        "half_rps": half["rps"],
                        "p50": half["p50"],
                        "p99": half["p99"],
                        "non2xx": peak["non2xx"] + half["non2xx"],
                    }
                    print(label, results[label], file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"Machine: {os.cpu_count()} cores, {cpu_name()}, Python {platform.python_version()}; load average at the "
        f"end {load[0]:.1f}"
    )
    print(
        f"Data: {args.customers:,} customers × 20 recommendations + profiles, {args.items:,} items × 20 similar; "
        f"uvicorn × {args.workers} workers (uvloop, httptools), wrk -t2 on loopback, {seconds} s per run"
    )
    print(f"Command: .venv/bin/python -m benchmarks.bench_serving{' --quick' if args.quick else ''}\n")
    print(
        f"| endpoint | max req/s ({args.connections} conn) | × (a) | p99 at max | req/s achieved at 50 % of (a) | "
        f"p50 | p99 | non-2xx |"
    )
    print("|---|---|---|---|---|---|---|---|")
    assert ref_max is not None
    for label, r in results.items():
        print(
            f"| {label} | {r['max_rps']:,.0f} | {r['max_rps'] / ref_max:.2f} | {r['max_p99']:.1f} ms | "
            f"{r['half_rps']:,.0f} | "
            f"{r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['non2xx']:.0f} |"
        )


if __name__ == "__main__":
    main()
