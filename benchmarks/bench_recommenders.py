"""Recommender quality on real data: every model × every metric, plus train time, and the issue-3 targets.

    .venv/bin/python -m benchmarks.bench_recommenders [--quick] [--time-budget 300] [--json results.json]

Protocols (``centric evaluate`` runs the same job, ``training.jobs.evaluate.run_evaluate``):

- **Online Retail** (UCI, cleaned by the ``online-retail`` adapter): temporal split, the last 30 days held out as
  test, the 30 days before them as validation.
- **The Complete Journey**: next-basket, each household's last basket is test, the one before it validation.

Both: hyperparameters (ALS/BPR/kNN/buy-again) searched on validation within the time budget, the hybrid's blend
tuned on validation, then every model refit on train + validation and scored on test.
``--quick`` keeps a random 20 % of customers and a 30 s budget (a smoke run, not the published figures).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.machine import machine
from recsys.columns import Columns
from recsys.matrix import build_matrix
from training.jobs.evaluate import DEFAULT_MODELS, fit_model, model_classes, run_evaluate

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data"
KS = (5, 10, 20)
OVERALL = [f"{m}@{k}" for m in ("precision", "recall", "ndcg", "map", "hit_rate") for k in KS]
# The next-basket convention (TIFU-KNN / TAIW code): over the whole test basket, items unseen in training included.
BASKET = [f"{m}@{k}" for m in ("ndcg_basket", "recall_basket") for k in KS]
CONVENTIONS = (
    "ndcg@k: the usual convention, ideal DCG cut at min(k, |truth|) over the test items seen in training; "
    "ndcg_basket@k / recall_basket@k: the next-basket convention of the TIFU-KNN and TAIW code, ideal DCG and "
    "recall over the whole test basket, items unseen in training included."
)
SEGMENTS = [
    f"{seg}_{m}@10" for seg in ("repeat", "explore") for m in ("precision", "recall", "ndcg", "map", "hit_rate")
]
# "<model>:new" = the same fitted model asked only for items new to the customer (how well it explores); the default
# model list of `centric evaluate` (DEFAULT_MODELS) ends with these.
CATALOG = [f"{m}@{k}" for m in ("coverage", "novelty") for k in (10,)] + ["fit_seconds", "recommend_seconds"]


def load(name: str) -> tuple[pl.DataFrame, pl.DataFrame | None, str]:
    """Return (transactions, catalog, loader) of a data set: through ``recsys.data`` when it is installed, else
    with the plain cleaning below (named in the output so a table says which one produced it)."""
    try:
        from recsys.data import load_transactions
    except ImportError:
        return (*_plain_load(name), "plain cleaning in bench_recommenders.py (recsys.data not available)")
    if name == "online-retail":
        result = load_transactions(DATA / "online_retail" / "online_retail.csv.gz", schema="online-retail")
    else:
        result = load_transactions(DATA / "completejourney" / "transactions.parquet", schema="complete-journey")
    return result.transactions, result.catalog, "recsys.data.load_transactions"


def _plain_load(name: str) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The usual cleaning: Online Retail purchases with a CustomerID, Quantity > 0, no ``C`` invoice (397,924 lines);
    Complete Journey lines with quantity > 0, baskets as orders, product categories as the catalog."""
    ts = pl.col(Columns.timestamp)
    if name == "online-retail":
        raw = pl.read_csv(
            DATA / "online_retail" / "online_retail.csv.gz",
            schema_overrides={"InvoiceNo": pl.String, "StockCode": pl.String, "CustomerID": pl.String},
        )
        kept = raw.filter(
            pl.col("CustomerID").is_not_null()
            & (pl.col("Quantity") > 0)
            & ~pl.col("InvoiceNo").str.starts_with("C")
            & (pl.col("UnitPrice") >= 0)
        )
        tx = kept.select(
            pl.col("CustomerID").str.replace(r"\.0$", "").alias(Columns.customer_id),
            pl.col("StockCode").alias(Columns.item_id),
            pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").alias(Columns.timestamp),
            pl.col("Quantity").cast(pl.Float64).alias(Columns.quantity),
            pl.col("InvoiceNo").alias(Columns.order_id),
        )
        return tx.with_columns(ts.dt.replace_time_zone("UTC").dt.cast_time_unit("us")), None
    raw = pl.read_parquet(DATA / "completejourney" / "transactions.parquet").filter(pl.col("quantity") > 0)
    tx = raw.select(
        pl.col("household_id").cast(pl.String).alias(Columns.customer_id),
        pl.col("product_id").cast(pl.String).alias(Columns.item_id),
        pl.col("transaction_timestamp").alias(Columns.timestamp),
        pl.col("quantity").cast(pl.Float64).alias(Columns.quantity),
        pl.col("basket_id").cast(pl.String).alias(Columns.order_id),
    ).with_columns(ts.dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
    products = pl.read_parquet(DATA / "completejourney" / "products.parquet")
    catalog = products.select(
        pl.col("product_id").cast(pl.String).alias(Columns.item_id), pl.col("product_category").alias(Columns.category)
    )
    return tx, catalog


def sample_customers(frame: pl.DataFrame, share: float, seed: int = 0) -> pl.DataFrame:
    """Keep a random ``share`` of the customers (all their lines)."""
    ids = frame.get_column(Columns.customer_id).unique().sort()
    keep = ids.sample(fraction=share, seed=seed)
    return frame.filter(pl.col(Columns.customer_id).is_in(keep.implode()))


def table(results: dict[str, Any], columns: list[str]) -> str:
    head = "| model | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = []
    for name, metrics in results["models"].items():
        cells = []
        for c in columns:
            v = metrics.get(c)
            cells.append(
                "—" if v is None else (f"{v:.2f}" if c.endswith("seconds") or c.startswith("novelty") else f"{v:.4f}")
            )
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def speed(transactions: pl.DataFrame, params: dict[str, Any]) -> dict[str, float]:
    """ALS fit on the whole data set and one top-10 list for every customer (the issue's speed targets)."""
    from recsys.evaluation.runner import EvalData

    matrix = build_matrix(transactions, weighting="count")
    data = EvalData(
        train=matrix,
        transactions=transactions,
        truth=matrix.matrix,
        customers=np.arange(len(matrix.customers), dtype=np.int32),
        now=transactions.get_column(Columns.timestamp).max(),
    )
    _ = data.recent  # build the decay matrix before timing
    started = time.perf_counter()
    model = fit_model(model_classes()["als"], params, data)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    model.recommend(np.arange(len(matrix.customers)), 10)
    rec_s = time.perf_counter() - started
    return {
        "customers": len(matrix.customers),
        "items": len(matrix.items),
        "als_fit_seconds": fit_s,
        "recommend_all_seconds": rec_s,
    }


def targets(name: str, results: dict[str, Any]) -> list[str]:
    models = results["models"]
    ndcg = {m: v["ndcg@10"] or 0.0 for m, v in models.items()}
    explore = {m: v["explore_recall@10"] or 0.0 for m, v in models.items()}
    pop_ndcg, pop_explore = ndcg.get("popularity", 0.0), explore.get("popularity", 0.0)
    lines = []
    hybrids = [m for m in ("hybrid", "hybrid_ltr") if m in ndcg]
    singles = {m: v for m, v in ndcg.items() if m not in hybrids and not m.endswith(":new")}
    best_single = max(singles, key=singles.get)
    for hybrid in hybrids:
        ratio = ndcg[hybrid] / singles[best_single] if singles[best_single] else float("nan")
        lines.append(
            f"- {hybrid} NDCG@10 / best single ({best_single}) = {ndcg[hybrid]:.4f} / {singles[best_single]:.4f} = "
            f"**{ratio:.2f}×** "
            "(target ≥ 1.10 on Complete Journey)"
        )
    best = max(ndcg, key=ndcg.get)
    if pop_ndcg:
        lines.append(
            f"- best NDCG@10 ({best}) / popularity = {ndcg[best]:.4f} / {pop_ndcg:.4f} = "
            f"**{ndcg[best] / pop_ndcg:.2f}×** (target ≥ 2 on Online Retail)"
        )
    candidates = {m: v for m, v in explore.items() if not m.startswith("popularity")}
    best_explore = max(candidates, key=candidates.get)
    if pop_explore:
        lines.append(
            f"- best explore_recall@10 ({best_explore}) / popularity = {explore[best_explore]:.4f} / "
            f"{pop_explore:.4f} = "
            f"**{explore[best_explore] / pop_explore:.2f}×** (target ≥ 1.5); hybrid: "
            f"{explore.get('hybrid', 0.0) / pop_explore:.2f}×"
        )
    if explore.get("popularity:new"):
        new_pop = explore["popularity:new"]
        lines.append(
            f"- against popularity of new items only (popularity:new, {new_pop:.4f}): {best_explore} "
            f"{explore[best_explore] / new_pop:.2f}×"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 %% of customers, 30 s tuning budget")
    parser.add_argument(
        "--time-budget", type=float, default=None, help="tuning seconds per data set (default 300, quick 30)"
    )
    parser.add_argument("--datasets", default="online-retail,complete-journey")
    parser.add_argument("--models", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write every result here")
    args = parser.parse_args()
    budget = args.time_budget if args.time_budget is not None else (30.0 if args.quick else 300.0)
    models = [m for m in args.models.split(",") if m] or list(DEFAULT_MODELS)
    command = (
        "python -m benchmarks.bench_recommenders"
        + (" --quick" if args.quick else "")
        + (f" --time-budget {budget:g}" if args.time_budget else "")
    )
    print(f"Machine: {machine()}. Command: `{command}`. Tuning budget {budget:g} s per data set.\n")
    everything: dict[str, Any] = {}
    for name in args.datasets.split(","):
        started = time.perf_counter()
        transactions, catalog, loader = load(name)
        if args.quick:
            transactions = sample_customers(transactions, 0.2)
        protocol = "temporal" if name == "online-retail" else "next-basket"
        results = run_evaluate(
            transactions,
            protocol=protocol,
            models=models,
            test_days=30,
            tune=True,
            time_budget=budget,
            ks=KS,
            catalog=catalog,
        )
        final = results["data"]["final"]
        print(f"### {name} — {protocol}\n")
        print(
            f"{transactions.height:,} lines (loaded with {loader}); train {final['train_lines']:,} lines, "
            f"{final['customers']:,} customers × {final['items']:,} items; "
            f"test {final['test_lines']:,} lines for {final['scored_customers']:,} customers "
            f"(left out: {final['unseen_customers']} unseen customers / {final['unseen_customer_lines']} lines, "
            f"{final['unseen_items']} unseen items / {final['unseen_item_lines']} lines).\n"
        )
        print(table(results, OVERALL) + "\n")
        print(table(results, BASKET) + "\n")
        print(CONVENTIONS + "\n")
        print(table(results, SEGMENTS + CATALOG) + "\n")
        tuned = {m: r.get("best_params") for m, r in results["tuning"].items()}
        print(f"Tuned on validation: `{json.dumps(tuned)}`\n")
        print("\n".join(targets(name, results)))
        if name == "complete-journey":
            sp = speed(transactions, results["models"].get("als", {}).get("params", {}) or {})
            print(
                f"- ALS fit on all {sp['customers']:,} × {sp['items']:,}: **{sp['als_fit_seconds']:.1f} s** (target "
                f"≤ 15 s); "
                f"top-10 for every customer: **{sp['recommend_all_seconds']:.1f} s** (target ≤ 10 s)"
            )
            results["speed"] = sp
        print(f"\n({name}: {time.perf_counter() - started:.0f} s in all)\n", flush=True)
        everything[name] = results
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
