"""Publishing benchmark: N customers × K recommendations (plus profiles) → a verified, active snapshot.

Generates a synthetic artifact directory (not timed), starts a private redis-server (the one Centric's
embedded mode would use, AOF on as configured), then times ``run_publish`` end to end: reading the
Parquet files, encoding, pipelined writes, verification (counts + checksum of every record computed
by Redis) and activation. Memory: ``INFO memory`` before/after and ``MEMORY USAGE`` of the buckets.

    .venv/bin/python -m benchmarks.bench_publish            # 1M customers × 20 recs, 100k items
    .venv/bin/python -m benchmarks.bench_publish --quick    # 100k customers
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import redis

from benchmarks.machine import cpu_name
from recsys.store.embedded import EmbeddedRedis, find_redis_server
from recsys.store.keys import Keys
from training.jobs.publish import run_publish


def make_artifacts(directory: Path, customers: int, k: int, items: int, profiles: bool, seed: int = 7) -> None:
    """Write recommendations.parquet, items.parquet and (optionally) profiles.parquet of synthetic data."""
    rng = np.random.default_rng(seed)
    customer_ids = pl.Series("customer_id", [f"C{i:07d}" for i in range(customers)])
    item_ids = pl.Series("item_id", [f"I{i:06d}" for i in range(items)])
    picks = rng.integers(0, items, size=customers * k)
    scores = np.sort(rng.random((customers, k)).astype(np.float32), axis=1)[:, ::-1].ravel()
    sources = np.where(np.tile(np.arange(k), customers) < 3, "buy_again", "personalized")
    pl.DataFrame(
        {
            "customer_id": customer_ids.gather(np.repeat(np.arange(customers), k)),
            "item_id": item_ids.gather(picks),
            "rank": pl.Series(np.tile(np.arange(1, k + 1), customers), dtype=pl.Int32),
            "score": scores,
            "source": sources,
        }
    ).with_columns(
        pl.when(pl.col("source") == "buy_again")
        .then(pl.lit("you buy it regularly"))
        .otherwise(pl.lit("customers like you bought it"))
        .alias("reason")
    ).write_parquet(directory / "recommendations.parquet")
    pl.DataFrame(
        {
            "item_id": item_ids,
            "name": item_ids,
            "category": pl.Series([f"cat{i % 200}" for i in range(items)]),
            "price": rng.random(items) * 20,
            "in_stock": rng.random(items) > 0.02,
            "repeat_category": rng.random(items) > 0.8,
        }
    ).write_parquet(directory / "items.parquet")
    if profiles:
        segments = np.array(["champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost"])
        pl.DataFrame(
            {
                "customer_id": customer_ids,
                "segment": segments[rng.integers(0, 7, customers)],
                "lifecycle": np.array(["new", "active", "at_risk", "lapsed"])[rng.integers(0, 4, customers)],
                "clv": rng.random(customers) * 500,
                "p_alive": rng.random(customers),
                "orders": rng.integers(1, 50, customers),
                "r_score": rng.integers(1, 6, customers),
                "f_score": rng.integers(1, 6, customers),
                "m_score": rng.integers(1, 6, customers),
                "total_spend": rng.random(customers) * 2000,
            }
        ).write_parquet(directory / "profiles.parquet")


def bucket_bytes(
    client: redis.Redis, keys: Keys, version: str, kind: str, n_buckets: int, sample: int = 200
) -> tuple[float, str]:
    """Return (mean MEMORY USAGE of sampled buckets × n_buckets, encoding of bucket 0)."""
    rng = np.random.default_rng(1)
    picked = rng.choice(n_buckets, size=min(sample, n_buckets), replace=False)
    sizes = [client.memory_usage(keys.snapshot_bucket(version, kind, int(b)), samples=0) or 0 for b in picked]
    encoding = client.object("encoding", keys.snapshot_bucket(version, kind, 0))
    return float(np.mean(sizes)) * n_buckets, encoding.decode() if isinstance(encoding, bytes) else str(encoding)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k customers")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--appendfsync", default="always", choices=("always", "everysec", "no"))
    args = parser.parse_args()
    customers = 100_000 if args.quick else args.customers
    binary = find_redis_server()
    version_line = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="centric-bench-publish-") as tmp:
        tmp_path = Path(tmp)
        for label, with_profiles in (("recommendations only", False), ("recommendations + profiles", True)):
            art = tmp_path / f"art-{with_profiles}"
            art.mkdir()
            make_artifacts(art, customers, args.k, args.items, with_profiles)
            server = EmbeddedRedis(tmp_path / f"home-{with_profiles}", appendfsync=args.appendfsync)
            url = server.start()
            try:
                client = redis.Redis.from_url(url)
                keys = Keys("bench")
                before = client.info("memory")["used_memory"]
                start = time.perf_counter()
                summary = run_publish(client, keys, art)
                seconds = time.perf_counter() - start
                after = client.info("memory")
                info = client.hget(keys.snapshot_meta(summary["version"]), "info")
                import orjson

                buckets = orjson.loads(info)["buckets"]
                per_kind = {
                    kind: bucket_bytes(client, keys, summary["version"], kind, n) for kind, n in buckets.items()
                }
                allocator = after.get("mem_allocator", "?")
                delta = after["used_memory"] - before
                rows.append((label, summary, seconds, delta / customers, per_kind, allocator))
                client.close()
            finally:
                server.stop()
    print(
        f"Machine: {os.cpu_count()} cores, {cpu_name()}, Python {platform.python_version()}; "
        f"{version_line.split(' sha=')[0]}"
    )
    print(
        f"Data: {customers:,} customers × {args.k} recommendations, {args.items:,} items; AOF "
        f"appendfsync={args.appendfsync}"
    )
    print(f"Command: .venv/bin/python -m benchmarks.bench_publish{' --quick' if args.quick else ''}\n")
    print(
        "| snapshot | publish time (read + encode + write + verify + activate) | used_memory Δ per customer | "
        "MEMORY USAGE per customer by kind | allocator | bucket encoding |"
    )
    print("|---|---|---|---|---|---|")
    for label, _summary, seconds, per_customer, per_kind, allocator in rows:
        kinds = ", ".join(f"{k}: {v[0] / customers:.0f} B" for k, v in per_kind.items())
        encodings = ", ".join(f"{k}: {v[1]}" for k, v in per_kind.items())
        print(f"| {label} | {seconds:.1f} s | {per_customer:.0f} B | {kinds} | {allocator} | {encodings} |")


if __name__ == "__main__":
    main()
