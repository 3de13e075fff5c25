"""Render times of every dashboard page on a published demo, through real HTTP (uvicorn as `centric serve` runs it).

Run `centric demo` first (it publishes The Complete Journey and backfills loyalty), then, with the same Redis:

    CENTRIC_REDIS_URL=redis://127.0.0.1:PORT/0 .venv/bin/python -m benchmarks.bench_ui [--env dev] [--repeat 30]

For each page it starts a fresh server, waits ``--settle`` seconds (0: the first load races the background
warm-up the service starts with), signs in and times the first load, then ``--repeat`` more loads; it prints first,
median and p95 in milliseconds (client-side, whole response), and the target of issue 17 (every page under 300 ms
on the Complete Journey demo).

The figures over every loyalty member are shared in Redis once computed (``serving.services.dashboard_cache``), so a
restarted server finds them; ``--cold`` deletes them before every server start, which times the very first start of
a service on a ledger no process has summed yet (the worst case).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx
import redis

from benchmarks import harness
from benchmarks.machine import machine
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from serving.auth import create_api_key, revoke_api_key
from serving.services import dashboard

TARGET_MS = 300.0


def _pick_customer(client: redis.Redis, keys: Keys) -> str:
    member = client.srandmember(keys.loyalty_customers())
    if member is None:
        raise SystemExit("no loyalty members in this namespace: run `centric demo` with this Redis first")
    return member.decode() if isinstance(member, bytes) else str(member)


def _forget_figures(client: redis.Redis, keys: Keys) -> None:
    version = RedisSnapshotStore(client, keys).active_version()
    names = [dashboard.SUMMARY, dashboard.HISTORY]
    if version is not None:
        names += [dashboard.offers_name({"version": version}), dashboard.experiments_name({"version": version})]
    client.delete(*(keys.ui_figure(name) for name in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=os.environ.get("CENTRIC_ENV", "dev"))
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--settle", type=float, default=0.0, help="Seconds to wait after the server starts before the first load."
    )
    parser.add_argument(
        "--cold", action="store_true", help="Delete the shared dashboard figures before every server start."
    )
    args = parser.parse_args()
    redis_url = os.environ.get("CENTRIC_REDIS_URL")
    if not redis_url:
        raise SystemExit("set CENTRIC_REDIS_URL to the Redis the demo published to")
    keys = Keys(args.env)
    client = redis.Redis.from_url(redis_url)
    key = create_api_key(client, keys, "read", name="bench_ui")
    customer = _pick_customer(client, keys)
    customers = client.scard(keys.loyalty_customers())
    offer = "snacks_crosssell"
    pages = {
        "overview": "/ui",
        "customer 360": f"/ui/customers?id={customer}",
        "model quality": "/ui/models",
        "campaigns (+ audience)": f"/ui/campaigns?offer={offer}&budget=100",
        "loyalty": "/ui/loyalty",
    }
    rows = []
    try:
        for name, path in pages.items():
            env = {**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": args.env}
            if args.cold:
                _forget_figures(client, keys)
            started = time.perf_counter()
            with harness.serving("serving.app:create_app", env) as server:
                ready_s = time.perf_counter() - started  # process start, lifespan (dashboard warm-up), /healthz
                with httpx.Client(base_url=server.base, timeout=30) as http:
                    time.sleep(args.settle)  # 0: the first load races the startup warm-up of the dashboard's figures
                    login = http.post("/ui/login", data={"api_key": key, "next": "/ui"})
                    assert login.status_code == 303, login.text
                    times = []
                    for _ in range(args.repeat + 1):
                        start = time.perf_counter()
                        response = http.get(path)
                        times.append((time.perf_counter() - start) * 1000)
                        assert response.status_code == 200, (path, response.status_code)
                    size = len(response.content)
            warm = sorted(times[1:])
            p95 = warm[min(len(warm) - 1, int(round(0.95 * (len(warm) - 1))))]
            rows.append((name, ready_s, times[0], statistics.median(warm), p95, size))
    finally:
        revoke_api_key(client, keys, key.split("_")[1])
        client.close()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"data: {customers:,} loyalty members in namespace {args.env!r}; customer {customer}; {args.repeat} warm loads"
    )
    command = f"-m benchmarks.bench_ui --env {args.env} --repeat {args.repeat} --settle {args.settle:g}"
    command += " --cold" if args.cold else ""
    print(f"command: CENTRIC_REDIS_URL=... .venv/bin/python {command}")
    print()
    print("| page | server ready s | first load ms | median ms | p95 ms | HTML kB | under 300 ms |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, ready_s, first, median, p95, size in rows:
        ok = "yes" if max(first, p95) < TARGET_MS else "no"
        print(f"| {name} | {ready_s:.1f} | {first:.0f} | {median:.1f} | {p95:.1f} | {size / 1024:.0f} | {ok} |")


if __name__ == "__main__":
    main()
