"""Do views and clicks help as extra implicit feedback? NDCG@10 with their weight at 0 and above, on a time split.

    .venv/bin/python -m benchmarks.bench_implicit_feedback [--weights 0 0.1 0.3 1] [--test-days 28]

No data set here has views or clicks of recommendations, so this uses the closest real signals The Complete Journey
has, both from before the split's cutoff (nothing from the test weeks leaks in):

- "views": for each coupon each household was sent (``campaigns`` × ``coupons``, campaigns started before the
  cutoff), the coupon's most bought product — an item put in front of that customer, as a shown recommendation is;
- "clicks": the same product of each coupon the household redeemed (``coupon_redemptions`` before the cutoff).

Each explore model (the hybrid's source of new items: user-kNN, ALS, item-kNN) is fitted on
``purchases + weight × (views + clicks)`` (the count matrix and the recency-weighted one alike, a view weighing as
of the cutoff; ids of the purchases; pairs of unknown customers or items dropped) and scored on the test weeks'
purchases (all items, and ``explore`` = items new to the customer). Prints a table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from benchmarks.machine import machine
from recsys.data.demo import demo_dir, load_demo
from recsys.evaluation.runner import EvalData, evaluate_model, prepare
from recsys.matrix import PurchaseMatrix
from recsys.models import make_model
from recsys.splits import temporal_split

MODELS = ("user_knn", "als", "item_knn_cosine")


def exposures(folder: Path, cutoff: datetime, train: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (views, clicks) as ``customer_id, item_id`` string pairs from before ``cutoff`` (deduplicated).

    A coupon covers up to thousands of products; the one it shows is taken to be its product most bought in
    ``train`` (a coupon none of whose products were bought is left out).
    """
    bought = train.group_by(pl.col("item_id").alias("product_id")).len("buys")
    coupons = pl.read_parquet(folder / "coupons.parquet").with_columns(pl.col("product_id").cast(pl.String))
    shown = (
        coupons.join(bought, on="product_id")
        .sort("buys", "product_id", descending=[True, False])
        .unique(["coupon_upc", "campaign_id"], keep="first", maintain_order=True)
        .select("coupon_upc", "campaign_id", "product_id")
    )
    campaigns = pl.read_parquet(folder / "campaign_descriptions.parquet")
    started = campaigns.filter(pl.col("start_date") < cutoff.replace(tzinfo=None)).select("campaign_id")
    sent = pl.read_parquet(folder / "campaigns.parquet").join(started, on="campaign_id")
    pairs = [pl.col("household_id").cast(pl.String).alias("customer_id"), pl.col("product_id").alias("item_id")]
    views = sent.join(shown, on="campaign_id").select(pairs)
    redeemed = pl.read_parquet(folder / "coupon_redemptions.parquet").filter(
        pl.col("redemption_date") < cutoff.replace(tzinfo=None)
    )
    clicks = redeemed.join(shown, on=["coupon_upc", "campaign_id"]).select(pairs)
    return views.unique(), clicks.unique()


def pair_matrix(pairs: pl.DataFrame, train: PurchaseMatrix) -> sp.csr_matrix:
    """Return the binary customers × items matrix of ``pairs`` on ``train``'s ids (unknown ids dropped)."""
    rows = train.customers.to_internal(pairs.get_column("customer_id"), strict=False)
    cols = train.items.to_internal(pairs.get_column("item_id"), strict=False)
    keep = (rows >= 0) & (cols >= 0)
    data = np.ones(int(keep.sum()), dtype=np.float32)
    shape = train.matrix.shape
    return sp.csr_matrix((data, (rows[keep], cols[keep])), shape=shape)


def main() -> None:
    """Fit each model at each weight and print NDCG@10 (all and explore)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 0.3, 1.0])
    parser.add_argument("--test-days", type=float, default=28)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    loaded = load_demo()
    split = temporal_split(loaded.transactions, test_days=args.test_days).final
    data = prepare(split)
    cutoff = datetime.fromisoformat(str(split.stats["cutoff"]))
    views, clicks = exposures(demo_dir(), cutoff, split.train)
    extra = pair_matrix(views, data.train) + pair_matrix(clicks, data.train)
    extra.sum_duplicates()
    rows = []
    for name in args.models:
        for weight in args.weights:
            augmented = dataclasses.replace(data.train, matrix=(data.train.matrix + weight * extra).tocsr())
            # the recency-weighted matrix too (user-kNN and buy-again score from it): a view counts as of the cutoff
            recent = dataclasses.replace(data.recent, matrix=(data.recent.matrix + weight * extra).tocsr())

            def factory(
                d: EvalData, matrix: PurchaseMatrix = augmented, decayed: PurchaseMatrix = recent, model: str = name
            ) -> object:
                return make_model(model).fit(matrix, recent=decayed)

            started = time.perf_counter()
            metrics = evaluate_model(factory, data, ks=(10,))  # type: ignore[arg-type]
            rows.append((name, weight, metrics["ndcg@10"], metrics["explore_ndcg@10"], time.perf_counter() - started))
            print(f"{name} weight {weight:g}: ndcg@10 {metrics['ndcg@10']:.4f}", file=sys.stderr, flush=True)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"machine: {machine()}; load average {load} at the end")
    print(
        "command: .venv/bin/python -m benchmarks.bench_implicit_feedback --weights "
        + " ".join(f"{w:g}" for w in args.weights)
        + f" --test-days {args.test_days:g}"
    )
    print(
        f"data: The Complete Journey, {data.stats['customers']:,} customers, {data.stats['items']:,} items, "
        f"{data.stats['scored_customers']:,} scored; cutoff {cutoff:%Y-%m-%d}; extra pairs on train ids: "
        f"{views.height:,} views, {clicks.height:,} clicks → {extra.nnz:,} cells"
    )
    print()
    print("| model | weight | NDCG@10 | explore NDCG@10 | vs weight 0 | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    base = {name: ndcg for name, weight, ndcg, _, _ in rows if weight == 0}
    for name, weight, ndcg, explore, seconds in rows:
        change = f"{ndcg / base[name] - 1:+.1%}" if base.get(name) else ""
        print(f"| {name} | {weight:g} | {ndcg:.4f} | {explore:.4f} | {change} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
