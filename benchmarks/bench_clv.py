"""Customer analytics benchmark: BG/NBD holdout accuracy (CDNOW, Online Retail) and fit times (CDNOW, Complete
Journey, synthetic customers drawn from the BG/NBD process).

    .venv/bin/python -m benchmarks.bench_clv [--quick]

``--quick`` uses 100k synthetic customers instead of 1M. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.machine import machine
from recsys.analytics import BetaGeoModel, calibration_holdout, rfm_summary
from recsys.columns import Columns
from tests.helpers.cdnow import read_cdnow
from tests.helpers.synthetic import simulate_bgnbd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def online_retail() -> pl.DataFrame:
    """Online Retail purchases (positive quantity and price, known customer) in the standard columns."""
    raw = pl.read_csv(DATA / "online_retail" / "online_retail.csv.gz", infer_schema_length=0)
    return (
        raw.filter(pl.col("CustomerID").is_not_null() & ~pl.col("InvoiceNo").str.starts_with("C"))
        .select(
            pl.col("CustomerID").str.replace(r"\.0$", "").alias(Columns.customer_id),
            pl.col("StockCode").alias(Columns.item_id),
            pl.col("InvoiceDate")
            .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S")
            .dt.replace_time_zone("UTC")
            .alias(Columns.timestamp),
            (pl.col("Quantity").cast(pl.Float64) * pl.col("UnitPrice").cast(pl.Float64)).alias(Columns.amount),
            pl.col("Quantity").cast(pl.Float64).alias(Columns.quantity),
        )
        .filter((pl.col(Columns.quantity) > 0) & (pl.col(Columns.amount) > 0))
    )


def complete_journey() -> pl.DataFrame:
    """Complete Journey purchases in the standard columns."""
    raw = pl.read_parquet(DATA / "completejourney" / "transactions.parquet")
    return raw.filter(pl.col("quantity") > 0).select(
        pl.col("household_id").cast(pl.String).alias(Columns.customer_id),
        pl.col("product_id").cast(pl.String).alias(Columns.item_id),
        pl.col("transaction_timestamp").dt.replace_time_zone("UTC").alias(Columns.timestamp),
        pl.col("sales_value").cast(pl.Float64).alias(Columns.amount),
    )


def holdout_row(name: str, tx: pl.DataFrame, cal_end: str, obs_end: str, unit: str) -> dict:
    """Fit on the calibration period and compare predicted and actual holdout purchase days."""
    frame = calibration_holdout(tx, cal_end, obs_end, time_unit=unit)
    x, t_x, T = (frame[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    t0 = time.perf_counter()
    model = BetaGeoModel().fit(x, t_x, T)
    fit_s = time.perf_counter() - t0
    pred = model.conditional_expected(float(frame["duration_holdout"][0]), x, t_x, T)
    actual = frame["frequency_holdout"].to_numpy()
    return {
        "data": name,
        "customers": frame.height,
        "calibration": f"… → {cal_end}",
        "holdout": f"→ {obs_end}",
        "MAE / customer": f"{np.abs(pred - actual).mean():.3f}",
        "predicted / actual": f"{pred.sum():,.0f} / {actual.sum():,.0f} "
        f"({100 * (pred.sum() - actual.sum()) / actual.sum():+.1f} %)",
        "fit s": f"{fit_s:.2f}",
    }


def timing_row(name: str, make_tx, unit: str) -> dict:
    """Time the summary and the BG/NBD fit on all of ``make_tx()``."""
    tx = make_tx()
    t0 = time.perf_counter()
    s = rfm_summary(tx, time_unit=unit)
    t1 = time.perf_counter()
    model = BetaGeoModel().fit(s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy())
    t2 = time.perf_counter()
    r, alpha, a, b = model.params_
    return {
        "data": name,
        "rows": f"{tx.height:,}",
        "customers": f"{s.height:,}",
        "summary s": f"{t1 - t0:.2f}",
        "BG/NBD fit s": f"{t2 - t1:.2f}",
        "total s": f"{t2 - t0:.2f}",
        "params (r, α, a, b)": f"{r:.3f}, {alpha:.3f}, {a:.3f}, {b:.3f}",
    }


def synthetic_transactions(n: int, seed: int = 0) -> pl.DataFrame:
    """Transactions of ``n`` customers from the BG/NBD process (r=0.25, α=4 weeks, a=0.8, b=2.5; 78 weeks).

    Purchase days inside (0, t_x) are uniform given their count, which is how a Poisson process places them.
    """
    x, t_x, T = simulate_bgnbd(n, 0.25, 4.0 * 7, 0.8, 2.5, T_max=78 * 7.0, seed=seed)
    rng = np.random.default_rng(seed + 1)
    end = np.datetime64("2024-12-31")
    first = end - np.round(T).astype("timedelta64[D]")
    counts = x.astype(np.int64)
    owner = np.repeat(np.arange(n), counts)
    # the last repeat purchase sits at t_x; the others are uniform in (0, t_x)
    offsets = rng.uniform(0, 1, owner.size) * t_x[owner]
    last = np.cumsum(counts) - 1
    offsets[last[counts > 0]] = t_x[counts > 0]
    cust = np.concatenate([np.arange(n), owner])
    days = np.concatenate([first, first[owner] + np.round(offsets).astype("timedelta64[D]")])
    return pl.DataFrame(
        {
            Columns.customer_id: pl.Series(cust).cast(pl.String),
            Columns.timestamp: pl.Series(days.astype("datetime64[us]")).dt.replace_time_zone("UTC"),
            Columns.amount: rng.gamma(4.0, 5.0, cust.size),
        }
    )


def table(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k synthetic customers instead of 1M")
    args = parser.parse_args()
    n_syn = 100_000 if args.quick else 1_000_000
    print(
        f"machine: {machine()}; command: .venv/bin/python -m benchmarks.bench_clv{' --quick' if args.quick else ''}\n"
    )
    cdnow = read_cdnow(DATA / "cdnow" / "CDNOW_sample.txt")
    retail = online_retail()
    print("### BG/NBD holdout accuracy (purchase days; predicted = conditional expectation over the holdout)\n")
    print(
        table(
            [
                holdout_row("CDNOW sample (weeks)", cdnow, "1997-09-30", "1998-06-30", "week"),
                holdout_row("Online Retail (weeks)", retail, "2011-09-09", "2011-12-09", "week"),
            ]
        )
    )
    print("\n### Summary + BG/NBD fit time (all data as calibration)\n")
    print(
        table(
            [
                timing_row("CDNOW sample (weeks)", lambda: cdnow, "week"),
                timing_row("Complete Journey (weeks)", complete_journey, "week"),
                timing_row(
                    f"synthetic BG/NBD, {n_syn:,} customers (days)", lambda: synthetic_transactions(n_syn), "day"
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
