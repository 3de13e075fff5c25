"""Recommender speed on The Complete Journey, and the hybrid against its parts (next-basket).

    .venv/bin/python -m benchmarks.bench_models [--quick]

Speed (issue 3 targets): ALS fit on all CJ purchases (default parameters), top-20 for every customer (ALS,
buy-again, hybrid), and ``run_train`` end to end (blend tuning, fits, recommendations, similar items, files).

Quality: next-basket protocol of ``recsys.splits.next_basket_split`` (each household's last basket is test, the one
before it validation). The hybrid's blend is tuned on validation with models fitted on the tuning train part, then
every model is refit on train + validation and scored on test; NDCG@10 / recall@10 / explore recall@10.
``--quick`` keeps a random 25 % of households (a smoke run, not the published figures).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.evaluation.metrics import evaluate_top_k
from recsys.evaluation.runner import EvalData, prepare
from recsys.matrix import build_matrix
from recsys.models import HybridRecommender, make_model, tune_blend
from recsys.splits import next_basket_split
from training.jobs.train import run_train

ROOT = Path(__file__).resolve().parents[1]

CJ = ROOT.parent / "shared" / "data" / "completejourney"


def load_cj(fraction: float) -> Any:
    """The demo LoadResult when ``recsys.data`` is available, else the raw parquet mapped to the standard columns."""
    try:
        from recsys.data.demo import load_demo

        result = load_demo()
    except ImportError:
        tx = pl.read_parquet(CJ / "transactions.parquet").filter(pl.col("quantity") > 0)
        tx = tx.select(
            pl.col("household_id").cast(pl.String).alias(Columns.customer_id),
            pl.col("product_id").cast(pl.String).alias(Columns.item_id),
            pl.col("transaction_timestamp")
            .dt.replace_time_zone("UTC")
            .dt.cast_time_unit("us")
            .alias(Columns.timestamp),
            pl.col("quantity").cast(pl.Float64).alias(Columns.quantity),
            (pl.col("sales_value") / pl.col("quantity")).alias(Columns.price),
            pl.col("basket_id").cast(pl.String).alias(Columns.order_id),
        )
        products = pl.read_parquet(CJ / "products.parquet")
        catalog = products.select(
            pl.col("product_id").cast(pl.String).alias(Columns.item_id),
            pl.col("product_type").alias(Columns.name),
            pl.col("product_category").alias(Columns.category),
            pl.lit(None, pl.Float64).alias(Columns.price),
            pl.lit(True).alias(Columns.in_stock),
        )
        result = SimpleNamespace(transactions=tx, catalog=catalog)
    if fraction < 1.0:
        ids = result.transactions.get_column(Columns.customer_id).unique().sort()
        keep = ids.sample(fraction=fraction, seed=7)
        result = SimpleNamespace(
            transactions=result.transactions.filter(pl.col(Columns.customer_id).is_in(keep.implode())),
            catalog=result.catalog,
        )
    return result


def timed(func: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = func()
    return value, time.perf_counter() - started


def speed(result: Any) -> list[tuple[str, str]]:
    tx = result.transactions
    counts = build_matrix(tx, weighting="count")
    recent = build_matrix(tx, weighting="decay", half_life_days=120, customers=counts.customers, items=counts.items)
    everyone = np.arange(len(counts.customers))
    als, als_fit = timed(lambda: make_model("als").fit(counts))
    _, als_rec = timed(lambda: als.recommend(everyone, 20))
    buy_again = make_model("buy_again").fit(counts, recent=recent)
    _, ba_rec = timed(lambda: buy_again.recommend(everyone, 20))
    hybrid, hybrid_fit = timed(lambda: HybridRecommender().fit(counts, recent=recent))
    _, hybrid_rec = timed(lambda: hybrid.recommend(everyone, 20))
    ltr, ltr_fit = timed(lambda: make_model("hybrid_ltr").fit(counts, recent=recent, transactions=tx))
    _, ltr_rec = timed(lambda: ltr.recommend(everyone, 20))
    with tempfile.TemporaryDirectory() as out:
        summary, train_s = timed(lambda: run_train(result, Path(out)))
    return [
        ("ALS fit, default params (target <= 15 s)", f"**{als_fit:.1f} s**"),
        ("top-20 for every customer: ALS / buy-again", f"{als_rec:.1f} s / {ba_rec:.1f} s"),
        ("hybrid fit / top-20 for every customer (target <= 10 s)", f"{hybrid_fit:.1f} s / **{hybrid_rec:.1f} s**"),
        ("learned hybrid (hybrid_ltr) fit / top-20 for every customer", f"{ltr_fit:.1f} s / **{ltr_rec:.1f} s**"),
        ("`run_train` end to end (tune + fit + recommend + similar + write)", f"**{train_s:.1f} s**"),
        ("`run_train` stage seconds", ", ".join(f"{k} {v}" for k, v in summary["seconds"].items())),
        ("`run_train` tuned blend (weight, slope, validation NDCG@10)", str(summary["blend_tuning"])),
    ]


def quality(result: Any) -> list[tuple[str, dict[str, float]]]:
    plan = next_basket_split(result.transactions)
    tuning, final = prepare(plan.tuning, recent_half_life_days=120), prepare(plan.final, recent_half_life_days=120)

    def score(model: Any, data: EvalData) -> dict[str, float]:
        fitted, fit_s = timed(lambda: model.fit(data.train, recent=data.recent, transactions=data.transactions))
        ids, _ = fitted.recommend(data.customers, 20)
        metrics = evaluate_top_k(ids, data.truth[data.customers], data.train.matrix[data.customers])
        return {**metrics, "fit_seconds": fit_s}

    rows = [(name, score(make_model(name), final)) for name in ("popularity", "buy_again", "als", "user_knn")]
    variants = (
        ("hybrid: buy-again + ALS, no item prior", {"explore": "als", "item_prior": 0.0, "neighbour_weight": 0.0}),
        ("hybrid: buy-again × item prior + ALS", {"explore": "als", "neighbour_weight": 0.0}),
        ("hybrid (default): buy-again × item prior + user-kNN, β 0.35", {}),
    )
    for label, params in variants:
        tuned = HybridRecommender(**params).fit(tuning.train, recent=tuning.recent)
        best = tune_blend(tuned, tuning.customers, tuning.truth)[0]
        blend = {"repeat_weight": best.repeat_weight, "repeat_slope": best.repeat_slope}
        rows.append(
            (
                f"{label}; tuned w {blend['repeat_weight']}, slope {blend['repeat_slope']}",
                score(HybridRecommender(**params, **blend), final),
            )
        )
    rows.append(("hybrid_ltr (learned ranker, defaults)", score(make_model("hybrid_ltr"), final)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a random 25%% of households")
    args = parser.parse_args()
    result = load_cj(0.25 if args.quick else 1.0)
    tx = result.transactions
    print(
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}"
    )
    print(
        f"Data: The Complete Journey, {tx.height:,} lines, {tx[Columns.customer_id].n_unique():,} households, "
        f"{tx[Columns.item_id].n_unique():,} items"
    )
    print(f"Command: .venv/bin/python -m benchmarks.bench_models{' --quick' if args.quick else ''}\n")
    print("| measure | result |\n|---|---|")
    for name, value in speed(result):
        print(f"| {name} | {value} |")
    print(
        "\n| model (next-basket test) | NDCG@10 | recall@10 | explore recall@10 | repeat recall@10 | fit s "
        "|\n|---|---|---|---|---|---|"
    )
    best_single = 0.0
    for name, m in quality(result):
        print(
            f"| {name} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['explore_recall@10']:.4f} | "
            f"{m['repeat_recall@10']:.4f} | {m['fit_seconds']:.1f} |"
        )
        if not name.startswith("hybrid"):
            best_single = max(best_single, m["ndcg@10"])
        else:
            print(f"| ↳ ratio to the best single model | {m['ndcg@10'] / best_single:.3f}× | | | | |")


if __name__ == "__main__":
    main()
