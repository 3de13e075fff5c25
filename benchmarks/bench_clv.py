"""Customer analytics benchmark: the CLV model comparison (BG/NBD, MBG/NBD, Pareto/NBD: holdout errors on CDNOW,
The Complete Journey and Online Retail; published CDNOW estimates reproduced), BG/NBD holdout accuracy and fit times
(CDNOW, Complete Journey, synthetic customers drawn from the BG/NBD process).

    .venv/bin/python -m benchmarks.bench_clv [--quick] [--models-only] [--plots DIR] [--scale N]

``--quick`` uses 100k synthetic customers instead of 1M; ``--models-only`` prints only the model comparison, the
reproduced estimates and the analyze timings; ``--plots DIR`` writes the weekly tracking plots there; ``--scale N``
times ``run_analyze`` with the automatic model choice on N synthetic customers. Prints markdown.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.machine import machine
from recsys.analytics import BetaGeoModel, calibration_holdout, rfm_summary
from recsys.analytics.btyd import MODELS, make_model
from recsys.analytics.plots import plot_tracking
from recsys.analytics.selection import HoldoutSplit, choose, holdout_frame, score_models, split_at, split_by_fraction
from recsys.analytics.summary import unit_days
from recsys.analytics.tracking import tracking_totals, weekly_tracking
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


# Published CDNOW estimates (../shared/data/README.md, 4a): Pareto/NBD from Fader, Hardie & Lee (2005) via CLVTools'
# correctness test; MBG/NBD from BTYDplus (Platzer) via lifetimes' test (Batislam et al. 2007 did not fit CDNOW)
PUBLISHED = {
    "pnbd": ({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0, "Fader, Hardie & Lee 2005"),
    "mbgnbd": ({"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}, None, "BTYDplus (Platzer), via lifetimes"),
    "bgnbd": ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4, "Fader, Hardie & Lee 2005"),
}


def model_rows(name: str, tx: pl.DataFrame, split: HoldoutSplit, unit: str, plots: Path | None) -> list[dict]:
    """Fit every model on the calibration period; per model its holdout errors and the weekly tracking error."""
    frame = holdout_frame(tx, split, unit)
    scores = score_models(frame, tuple(MODELS))
    chosen = choose(scores).name
    rows = []
    for score in scores:
        assert score.model is not None, score.error
        weeks = weekly_tracking(tx, frame, score.model, split, unit_days(unit))
        track = tracking_totals(weeks)
        if plots is not None and score.name == chosen:
            plot_tracking(weeks, plots / name.split(" (")[0].lower().replace(" ", "_"), label=score.model.label)
        e = score.errors
        rows.append(
            {
                "data": name,
                "calibration end → holdout end": f"{split.calibration_end:%Y-%m-%d} → {split.observation_end:%Y-%m-%d}",
                "customers": f"{frame.height:,}",
                "model": score.model.label + (" **(chosen)**" if score.name == chosen else ""),
                "MAE / customer": f"{e['mae_per_customer']:.4f}",
                "RMSE / customer": f"{e['rmse_per_customer']:.3f}",
                "predicted / actual (conditional)": f"{e['predicted_total']:,.0f} / {e['actual_total']:,.0f} "
                f"({e['aggregate_error_pct']:+.1f} %)",
                "tracking: holdout total error (unconditional)": f"{track['holdout_error_pct']:+.1f} %",
                "weekly MAE": f"{track['weekly_mae']:.1f}",
                "log-lik (calibration)": f"{score.model.loglik_:,.1f}",
                "fit s": f"{score.fit_seconds:.2f}",
            }
        )
    return rows


def estimate_rows() -> list[dict]:
    """Fit each model on the published CDNOW summary; compare with the published estimates."""
    d = pl.read_csv(DATA / "cdnow" / "cdnow_customers_summary.csv")
    x, t_x, T = (d[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    rows = []
    for name in ("pnbd", "mbgnbd", "bgnbd"):
        published, ll, source = PUBLISHED[name]
        fitted = make_model(name).fit(x, t_x, T).to_dict()
        worst = max(abs(fitted[k] / v - 1) for k, v in published.items())
        rows.append(
            {
                "model": MODELS[name].label,
                "published": ", ".join(f"{k} {v}" for k, v in published.items()) + (f"; LL {ll}" if ll else ""),
                "source": source,
                "reproduced": ", ".join(f"{k} {fitted[k]:.4f}" for k in published) + f"; LL {fitted['loglik']:.2f}",
                "largest relative difference": f"{100 * worst:.2f} %",
            }
        )
    return rows


def analyze_rows() -> list[dict]:
    """Time ``run_analyze`` on the demo data (Complete Journey, default options) with the model chosen or forced.

    Wall time depends on what else runs on the machine; the process CPU time (summed over polars' threads) less so.
    """
    from types import SimpleNamespace

    from training.jobs.analyze import run_analyze

    tx = SimpleNamespace(transactions=complete_journey(), catalog=None)
    rows = []
    for model in ("auto", "bgnbd", "mbgnbd", "pnbd"):
        out = Path("/tmp") / f"bench_clv_analyze_{model}"
        t0, c0 = time.perf_counter(), time.process_time()
        summary = run_analyze(tx, out, clv_model=model, plots=False)
        cpu = time.process_time() - c0
        rows.append(
            {
                "--clv-model": model,
                "profiles use": summary["clv_model"],
                "one-time buyers with churn risk ≥ 0.5": f"{summary['one_time_buyers']['churn_risk_at_least_0_5']} "
                f"of {summary['one_time_buyers']['customers']}",
                "analyze wall s": f"{time.perf_counter() - t0:.1f}",
                "analyze CPU s (all threads)": f"{cpu:.1f}",
            }
        )
    return rows


def analyze_scale_row(n: int) -> dict:
    """Time ``run_analyze`` (auto model choice, weeks, no plots) on ``n`` synthetic BG/NBD customers."""
    from types import SimpleNamespace

    from training.jobs.analyze import run_analyze

    tx = synthetic_transactions(n).with_columns(pl.lit("i1").alias(Columns.item_id))
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_analyze(SimpleNamespace(transactions=tx, catalog=None), Path("/tmp/bench_clv_scale"), plots=False)
    maes = ", ".join(f"{k} {v['mae_per_customer']:.4f}" for k, v in summary["holdout"]["models"].items())
    return {
        "data": f"synthetic BG/NBD, {n:,} customers",
        "rows": f"{tx.height:,}",
        "chosen": summary["clv_model"],
        "holdout MAE per model": maes,
        "analyze wall s": f"{time.perf_counter() - t0:.1f}",
        "analyze CPU s (all threads)": f"{time.process_time() - c0:.1f}",
    }


def table(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k synthetic customers instead of 1M")
    parser.add_argument("--models-only", action="store_true", help="only the CLV model comparison (issue 19)")
    parser.add_argument("--plots", type=Path, default=None, help="write the tracking plots of the chosen models here")
    parser.add_argument(
        "--scale", type=int, default=0, help="also time analyze (auto) on this many synthetic customers"
    )
    args = parser.parse_args()
    n_syn = 100_000 if args.quick else 1_000_000
    flags = "".join(f" {f}" for f, on in (("--quick", args.quick), ("--models-only", args.models_only)) if on)
    flags += f" --scale {args.scale}" if args.scale else ""
    print(f"machine: {machine()}; command: .venv/bin/python -m benchmarks.bench_clv{flags}\n")
    cdnow = read_cdnow(DATA / "cdnow" / "CDNOW_sample.txt")
    retail = online_retail()
    journey = complete_journey()
    print("### CLV models on a calibration/holdout split (purchase days; the lowest MAE per customer is chosen)\n")
    rows = model_rows("CDNOW sample (weeks)", cdnow, split_at(cdnow, "1997-09-30"), "week", args.plots)
    rows += model_rows("Complete Journey (weeks)", journey, split_by_fraction(journey, 0.5), "week", args.plots)
    rows += model_rows("Online Retail (weeks)", retail, split_at(retail, "2011-09-09"), "week", args.plots)
    print(table(rows))
    print("\n### Published CDNOW estimates reproduced (2,357 customers, 39 weeks)\n")
    print(table(estimate_rows()))
    print("\n### `run_analyze` on the demo data (Complete Journey, default options, no plots)\n")
    print(table(analyze_rows()))
    if args.scale:
        print(f"\n### `run_analyze` (auto) on {args.scale:,} synthetic customers\n")
        print(table([analyze_scale_row(args.scale)]))
    if args.models_only:
        return
    print("\n### BG/NBD holdout accuracy (purchase days; predicted = conditional expectation over the holdout)\n")
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
                timing_row("Complete Journey (weeks)", lambda: journey, "week"),
                timing_row(
                    f"synthetic BG/NBD, {n_syn:,} customers (days)", lambda: synthetic_transactions(n_syn), "day"
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
