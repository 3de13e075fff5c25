"""Load + validate + build the purchase matrix, end to end, on real and synthetic files.

    .venv/bin/python -m benchmarks.bench_ingest [--lines 20000000] [--quick]

Cases: UCI Online Retail (CSV.gz, 541,909 lines), The Complete Journey (Parquet, 1,469,307 lines) and a
synthetic standard CSV (default 20M lines, 1M customers, 50k Zipf items, 0.1 % bad rows). Each case runs in a
fresh process so its peak RSS is its own; generating the synthetic file is not timed. ``--quick``: 2M lines.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGETS = {"complete-journey": "<= 5 s", "synthetic": "<= 60 s and <= 6 GB"}


def make_synthetic(path: Path, lines: int, seed: int = 0) -> None:
    """Write ``lines`` rows of a standard CSV, with one malformed row in a thousand."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    chunk = 5_000_000
    with path.open("wb") as handle:
        handle.write(b"customer_id,item_id,timestamp,quantity,price,order_id\n")
        for start in range(0, lines, chunk):
            n = min(chunk, lines - start)
            seconds = rng.integers(1_704_067_200, 1_735_689_600, n)
            frame = pl.DataFrame(
                {
                    "customer_id": rng.integers(0, 1_000_000, n),
                    "item_id": rng.zipf(1.3, n) % 50_000,
                    "timestamp": pl.Series(seconds * 1_000_000)
                    .cast(pl.Datetime("us"))
                    .dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "quantity": rng.integers(1, 5, n),
                    "price": np.round(rng.gamma(2.0, 3.0, n), 2),
                }
            ).with_columns(
                pl.concat_str([pl.col("customer_id"), pl.lit("-"), pl.lit(start // chunk)]).alias("order_id")
            )
            bad = rng.random(n) < 0.001
            frame = frame.with_columns(
                pl.when(pl.Series(bad)).then(pl.lit("not a time")).otherwise(pl.col("timestamp")).alias("timestamp")
            )
            frame.write_csv(handle, include_header=False)


def run_case(path: str, schema: str) -> dict:
    """Child process: time load + validate + matrix build; report counts and peak RSS."""
    from recsys.data import load_transactions
    from recsys.matrix import build_matrix

    start = time.perf_counter()
    result = load_transactions(path, schema=schema)
    loaded = time.perf_counter()
    matrix = build_matrix(result.transactions, weighting="count")
    done = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows_read": result.report.rows_read,
        "rows_used": result.report.rows_used,
        "rows_rejected": result.report.rows_rejected,
        "customers": matrix.matrix.shape[0],
        "items": matrix.matrix.shape[1],
        "nnz": matrix.matrix.nnz,
        "load_s": loaded - start,
        "matrix_s": done - loaded,
        "total_s": done - start,
        "peak_gb": peak_kb / 1024 / 1024,
    }


def _child(path: Path, schema: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_ingest", "--child", str(path), "--schema", schema],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=20_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--schema", default="standard")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.schema)))
        return
    lines = 2_000_000 if args.quick else args.lines
    cases = []
    if (DATA / "online_retail").exists():
        cases.append(("online-retail", DATA / "online_retail" / "online_retail.csv.gz", "online-retail"))
        cases.append(("complete-journey", DATA / "completejourney" / "transactions.parquet", "complete-journey"))
    else:
        print(f"(no shared data at {DATA}: real-data rows skipped)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        synthetic = Path(folder) / "synthetic.csv"
        t0 = time.perf_counter()
        make_synthetic(synthetic, lines)
        print(
            f"generated {lines:,} lines ({synthetic.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        cases.append(("synthetic", synthetic, "standard"))
        rows = [(name, _child(path, schema)) for name, path, schema in cases]
    print(f"Machine: {machine()}\n")
    print(
        "| data | lines read | used | rejected | customers × items (nnz) | load + validate | matrix | total | peak "
        "RSS | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['rows_read']:,} | {r['rows_used']:,} | {r['rows_rejected']:,} | "
            f"{r['customers']:,} × {r['items']:,} ({r['nnz']:,}) | {r['load_s']:.1f} s | {r['matrix_s']:.1f} s | "
            f"**{r['total_s']:.1f} s** | {r['peak_gb']:.2f} GB | {TARGETS.get(name, '')} |"
        )


if __name__ == "__main__":
    main()
