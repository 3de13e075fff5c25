"""Do views and clicks help as extra implicit feedback? NDCG@10 with their weight at 0 and above, on a time split.

    nice -n 10 .venv/bin/python -m benchmarks.bench_implicit_feedback [--weights 0 0.1 0.3] [--test-days 28] \
        [--at event|cutoff] [--models user_knn als item_knn_cosine hybrid]

No data set here has views or clicks of recommendations, so this uses the closest real signals The Complete Journey
has, both from before the split's cutoff (nothing from the test weeks leaks in):

- "views": for each coupon each household was sent (``campaigns`` × ``coupons``, campaigns started before the
  cutoff), the coupon's most bought product — an item put in front of that customer, as a shown recommendation is;
  dated at the campaign's start;
- "clicks": the same product of each coupon the household redeemed (``coupon_redemptions`` before the cutoff),
  dated at the redemption.

``--at cutoff`` dates every view and click at the cutoff instead (the protocol of the first run of this benchmark:
then they weigh fully in the recency-decayed matrix).

It measures what ships: the rows go through the switch of ``centric train`` (``view_weight = click_weight = weight``:
:func:`recsys.implicit_feedback.feedback_matrices` on the train part's ids, decayed by their dates at the cutoff, and
``Recommender.fit(feedback=…)``), so each explore model (user-kNN, ALS, item-kNN) and the linear hybrid (buy-again +
user-kNN, default blend) learn from ``purchases + weight × (views + clicks)`` while their bought items stay the
purchases. Scored on the test weeks' purchases (all items, and ``explore`` = items new to the customer). Prints a
table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import polars as pl

from benchmarks.machine import machine
from recsys.columns import Columns
from recsys.data.demo import demo_dir, load_demo
from recsys.evaluation.runner import EvalData, evaluate_model, prepare
from recsys.implicit_feedback import Feedback, FeedbackWeights, feedback_matrices
from recsys.models import make_model
from recsys.splits import temporal_split

MODELS = ("user_knn", "als", "item_knn_cosine", "hybrid")


def exposures(folder: Path, cutoff: datetime, train: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (views, clicks) as ``customer_id, item_id, timestamp`` rows from before ``cutoff`` (deduplicated): a
    view at its campaign's start, a click at its redemption.

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
    started = campaigns.filter(pl.col("start_date") < cutoff.replace(tzinfo=None)).select("campaign_id", "start_date")
    sent = pl.read_parquet(folder / "campaigns.parquet").join(started, on="campaign_id")
    pairs = [pl.col("household_id").cast(pl.String).alias("customer_id"), pl.col("product_id").alias("item_id")]
    views = sent.join(shown, on="campaign_id").select(*pairs, _utc("start_date"))
    redeemed = pl.read_parquet(folder / "coupon_redemptions.parquet").filter(
        pl.col("redemption_date") < cutoff.replace(tzinfo=None)
    )
    clicks = redeemed.join(shown, on=["coupon_upc", "campaign_id"]).select(*pairs, _utc("redemption_date"))
    return views.unique(), clicks.unique()


def _utc(column: str) -> pl.Expr:
    """The data set's naive dates as the event store's UTC timestamps."""
    return pl.col(column).dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias(Columns.timestamp)


def implicit_rows(views: pl.DataFrame, clicks: pl.DataFrame, cutoff: datetime | None) -> pl.DataFrame:
    """Return the rows as the event store's view and click rows (``type``); with ``cutoff``, each stamped then."""
    frames = [frame.with_columns(pl.lit(kind).alias("type")) for frame, kind in ((views, "view"), (clicks, "click"))]
    if cutoff is not None:
        frames = [f.with_columns(pl.lit(cutoff).dt.cast_time_unit("us").alias(Columns.timestamp)) for f in frames]
    return pl.concat(frames)


def main() -> None:
    """Fit each model at each weight and print NDCG@10 (all and explore)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--test-days", type=float, default=28)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--at",
        choices=("event", "cutoff"),
        default="event",
        help="when a view or click happened: its campaign start / redemption date (event), or all at the cutoff",
    )
    args = parser.parse_args()
    loaded = load_demo()
    split = temporal_split(loaded.transactions, test_days=args.test_days).final
    data = prepare(split)
    cutoff = datetime.fromisoformat(str(split.stats["cutoff"]))
    views, clicks = exposures(demo_dir(), cutoff, split.train)
    events = implicit_rows(views, clicks, cutoff if args.at == "cutoff" else None)
    switch = {
        weight: feedback_matrices(
            events,
            data.train,
            FeedbackWeights(view=weight, click=weight),
            half_life_days=data.recent_half_life_days,
            now=data.now,
        )
        for weight in args.weights
    }
    added = next((f.summary for f in switch.values() if f is not None), None)
    rows = []
    for name in args.models:
        for weight in args.weights:
            feedback = switch[weight]

            def factory(d: EvalData, model: str = name, extra: Feedback | None = feedback) -> object:
                return make_model(model).fit(d.train, recent=d.recent, feedback=extra)

            started = time.perf_counter()
            metrics = evaluate_model(factory, data, ks=(10,))  # type: ignore[arg-type]
            rows.append((name, weight, metrics["ndcg@10"], metrics["explore_ndcg@10"], time.perf_counter() - started))
            print(f"{name} weight {weight:g}: ndcg@10 {metrics['ndcg@10']:.4f}", file=sys.stderr, flush=True)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"machine: {machine()}; load average {load} at the end")
    print(
        "command: nice -n 10 .venv/bin/python -m benchmarks.bench_implicit_feedback --weights "
        + " ".join(f"{w:g}" for w in args.weights)
        + f" --test-days {args.test_days:g} --at {args.at} --models "
        + " ".join(args.models)
    )
    print(
        f"data: The Complete Journey, {data.stats['customers']:,} customers, {data.stats['items']:,} items, "
        f"{data.stats['scored_customers']:,} scored; cutoff {cutoff:%Y-%m-%d}; {views.height:,} view and "
        f"{clicks.height:,} click rows"
        + (
            f" → {added['pairs_added']['view']:,} and {added['pairs_added']['click']:,} on train ids "
            f"({added['dropped_unknown_customer'] + added['dropped_unknown_item']:,} of unknown ids dropped), "
            f"{added['cells']:,} cells"
            if added
            else ""
        )
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
