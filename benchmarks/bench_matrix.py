"""Purchase-matrix build time (``recsys.matrix.build_matrix``) on The Complete Journey and a synthetic 20M-line frame.

    .venv/bin/python -m benchmarks.bench_matrix [--quick]

Times only the matrix build from an in-memory frame (loading and validation are benchmarked with the data
loaders). ``--quick`` uses 2M synthetic lines instead of 20M. Peak memory is the process's max RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.matrix import build_matrix

ROOT = Path(__file__).resolve().parents[1]

CJ = ROOT.parent / "shared" / "data" / "completejourney" / "transactions.parquet"


def complete_journey() -> pl.DataFrame:
    """The Complete Journey lines in the standard columns (ids as strings, UTC timestamps)."""
    raw = pl.read_parquet(CJ)
    return raw.filter(pl.col("quantity") > 0).select(
        pl.col("household_id").cast(pl.String).alias(Columns.customer_id),
        pl.col("product_id").cast(pl.String).alias(Columns.item_id),
        pl.col("transaction_timestamp").dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias(Columns.timestamp),
        pl.col("quantity").cast(pl.Float64).alias(Columns.quantity),
    )


def synthetic(lines: int, seed: int = 0) -> pl.DataFrame:
    """``lines`` random lines: 1M customers (uniform), 50k items (Zipf-skewed), one year of timestamps."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "c": rng.integers(0, min(1_000_000, lines // 10 + 1), lines),
            "i": rng.zipf(1.3, lines) % 50_000,
            "s": rng.integers(0, 365 * 86_400, lines),
        }
    ).select(
        pl.col("c").cast(pl.String).alias(Columns.customer_id),
        pl.col("i").cast(pl.String).alias(Columns.item_id),
        (pl.lit(start) + pl.duration(seconds=pl.col("s"))).dt.cast_time_unit("us").alias(Columns.timestamp),
        pl.lit(1.0).alias(Columns.quantity),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"Machine: {os.cpu_count()} cores, {cpu}. "
        f"Command: `python -m benchmarks.bench_matrix{' --quick' if args.quick else ''}`\n"
    )
    print("| data | lines | customers × items | pairs | weighting | seconds |")
    print("|---|---:|---|---:|---|---:|")
    frames = []
    if CJ.exists():
        frames.append(("Complete Journey", complete_journey()))
    n = 2_000_000 if args.quick else 20_000_000
    frames.append((f"synthetic {n // 1_000_000}M", synthetic(n)))
    for label, frame in frames:
        for weighting, extra in (("count", {}), ("bm25", {}), ("decay", {"half_life_days": 30.0})):
            started = time.perf_counter()
            pm = build_matrix(frame, weighting=weighting, **extra)
            seconds = time.perf_counter() - started
            print(
                f"| {label} | {frame.height:,} | {pm.shape[0]:,} × {pm.shape[1]:,} | {pm.nnz:,} | {weighting} | "
                f"{seconds:.2f} |",
                flush=True,
            )
        del frame
    print(
        f"\nPeak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB (includes the synthetic "
        f"frame itself)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
