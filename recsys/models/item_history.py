"""Everyone's purchases of each item through time, read "as of" a day: the item side of the learned hybrid's features.

A household's item features (how many bought the item, how many came back for it, how often it is in a basket, how
much it sold in the last 28 days) and its trending candidates are those of its own reference day — the day of its
last basket before the cutoff — computed from purchases made *before* that day. So they never depend on what
anyone bought later (see :mod:`recsys.models.basket_features`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
import scipy.sparse as sp

# Column names shared with recsys.models.basket_features (which owns the basket-line layout).
CUSTOMER, ITEM, TIME, BASKETS_AGO = "_cu", "_it", "_t", "_rl"
DAY, REF_DAY = "_day", "_ref_day"  # a day (days since the epoch, UTC) and a customer's reference day
TREND_DAYS = 28
# The item features, read "as of" each customer's reference day.
ITEM_FEATURES = (
    "item_buyers",
    "item_repeat_rate",
    "item_baskets_per_buyer",
    "item_basket_rate",
    "item_recent_lines",
    "item_repurchase_days",
)
CATEGORY = "_cat"
TREND_RANK = "_trend_rank"


class ItemContext(NamedTuple):
    """What every cutoff's features read about items: :func:`item_timeline`, :func:`baskets_by_day`, the item
    categories (``_it`` → ``_cat``; ``None`` without a catalog) and, when computed once for every cutoff, the
    ``trending_n`` trending items of every basket day (:func:`trending_asof`; ``None``: computed per cutoff)."""

    timeline: pl.DataFrame
    baskets: pl.DataFrame
    categories: pl.DataFrame | None = None
    trending: pl.DataFrame | None = None
    trending_n: int = 0


def item_context(lines: pl.DataFrame, item_categories: np.ndarray | None = None, trending: int = 0) -> ItemContext:
    """Return the :class:`ItemContext` of basket ``lines``; ``item_categories``: an int code per item index
    (``-1`` = none, as ``popular_in_category`` takes them); ``trending``: also the top ``trending`` items of every
    day with a basket (a customer's reference day is one of them), so that the cutoffs share one computation."""
    categories = None
    if item_categories is not None:
        codes = np.asarray(item_categories, np.int64)
        known = np.flatnonzero(codes >= 0)
        categories = pl.DataFrame(
            {ITEM: known.astype(np.int32), CATEGORY: codes[known].astype(np.int32)},
            schema={ITEM: pl.Int32, CATEGORY: pl.Int32},
        )
    timeline = item_timeline(lines)
    hot = None
    if trending > 0:
        days = lines.select(pl.col(TIME).dt.epoch("d").cast(pl.Int32).unique()).to_series()
        hot = trending_asof(timeline, days, trending)
    return ItemContext(timeline, baskets_by_day(lines), categories, hot, trending if hot is not None else 0)


def item_timeline(lines: pl.DataFrame) -> pl.DataFrame:
    """Return, per (item, day with a purchase), the item's history up to and including that day.

    Columns: ``_it``, ``_day`` (days since the epoch, UTC), ``_day_lines`` (baskets with the item that day) and the
    running totals ``_cum_lines`` (baskets with the item), ``_cum_buyers`` (customers who bought it),
    ``_cum_repeat`` (customers who bought it in two baskets or more), ``_cum_gap_days`` and ``_cum_gaps`` (days
    between a customer's consecutive purchases of the item, and how many such gaps, counted on the day of the later
    purchase: the item's own repurchase cycle, as time-aware item weighting reads it). Sorted by ``_day``: every
    item feature is read
    from it "as of" a day with :func:`item_stats_asof`, so no customer's features see a purchase made after
    their own reference day.
    """
    nth = pl.col(BASKETS_AGO).rank(method="ordinal", descending=True).over(CUSTOMER, ITEM)  # 1 = first purchase
    # days since the customer's previous purchase of the item (null for the first): lines are sorted by customer,
    # baskets ago (descending time within a customer), item
    gap = (pl.col(TIME).shift(-1) - pl.col(TIME)).over(CUSTOMER, ITEM).dt.total_seconds() / 86_400.0
    daily = (
        lines.sort(CUSTOMER, ITEM, BASKETS_AGO)
        .select(ITEM, pl.col(TIME).dt.epoch("d").cast(pl.Int32).alias(DAY), nth.alias("_n"), (-gap).alias("_gap"))
        .group_by(ITEM, DAY)
        .agg(
            pl.len().cast(pl.Int32).alias("_day_lines"),
            (pl.col("_n") == 1).sum().cast(pl.Int32).alias("_first"),
            (pl.col("_n") == 2).sum().cast(pl.Int32).alias("_second"),
            pl.col("_gap").sum().alias("_gap_days"),
            pl.col("_gap").count().cast(pl.Int32).alias("_gaps"),
        )
        .sort(ITEM, DAY)
    )
    return (
        daily.with_columns(
            pl.col("_day_lines").cum_sum().over(ITEM).alias("_cum_lines"),
            pl.col("_first").cum_sum().over(ITEM).alias("_cum_buyers"),
            pl.col("_second").cum_sum().over(ITEM).alias("_cum_repeat"),
            pl.col("_gap_days").cum_sum().over(ITEM).alias("_cum_gap_days"),
            pl.col("_gaps").cum_sum().over(ITEM).alias("_cum_gaps"),
        )
        .drop("_first", "_second", "_gap_days", "_gaps")
        .sort(DAY, ITEM)
    )


def item_stats_asof(frame: pl.DataFrame, timeline: pl.DataFrame, baskets: pl.DataFrame) -> pl.DataFrame:
    """Add the item features of ``frame``'s (``_it``, ``_ref_day``) rows from the purchases made *before* that day.

    ``item_buyers``, ``item_repeat_rate``, ``item_baskets_per_buyer``, ``item_basket_rate`` (share of all baskets
    that held the item), ``item_recent_lines`` (baskets with it in the 28 days before the reference day) and
    ``item_repurchase_days`` (the mean days between a buyer's consecutive purchases of it; null before any repeat).
    ``baskets``: :func:`baskets_by_day` of the same lines. Items not bought before the day get 0 buyers.
    """
    if frame.is_empty():
        return frame.with_columns(*[pl.lit(0.0).alias(c) for c in ITEM_FEATURES])
    right = timeline.select(DAY, ITEM, "_cum_lines", "_cum_buyers", "_cum_repeat", "_cum_gap_days", "_cum_gaps")
    left = frame.with_row_index("_row").with_columns((pl.col(REF_DAY) - 1).alias(DAY)).sort(DAY)
    # both sides are sorted by day, hence within each item too (polars cannot check that itself with `by`)
    now = left.join_asof(right, on=DAY, by=ITEM, strategy="backward", check_sortedness=False)
    before = (
        left.select("_row", ITEM, (pl.col(REF_DAY) - 1 - TREND_DAYS).alias(DAY))
        .sort(DAY)
        .join_asof(
            right.select(DAY, ITEM, pl.col("_cum_lines").alias("_old_lines")),
            on=DAY,
            by=ITEM,
            check_sortedness=False,
        )
        .select("_row", "_old_lines")
    )
    total = left.select("_row", DAY).join_asof(baskets, on=DAY, strategy="backward").select("_row", "_all")
    lines_, buyers = pl.col("_cum_lines").fill_null(0), pl.col("_cum_buyers").fill_null(0)
    return (
        now.join(before, on="_row", how="left")
        .join(total, on="_row", how="left")
        .with_columns(
            buyers.alias("item_buyers"),
            (pl.col("_cum_repeat").fill_null(0) / buyers).alias("item_repeat_rate"),
            (lines_ / buyers).alias("item_baskets_per_buyer"),
            (lines_ / pl.col("_all")).alias("item_basket_rate"),
            (lines_ - pl.col("_old_lines").fill_null(0)).alias("item_recent_lines"),
            pl.when(pl.col("_cum_gaps") > 0)
            .then(pl.col("_cum_gap_days") / pl.col("_cum_gaps"))
            .otherwise(None)
            .alias("item_repurchase_days"),
        )
        .sort("_row")
        .drop(
            "_row", DAY, "_cum_lines", "_cum_buyers", "_cum_repeat", "_cum_gap_days", "_cum_gaps", "_old_lines", "_all"
        )
    )


def baskets_by_day(lines: pl.DataFrame) -> pl.DataFrame:
    """Return ``_day`` → ``_all`` (every customer's baskets up to and including that day), sorted by day."""
    return (
        lines.select(CUSTOMER, BASKETS_AGO, pl.col(TIME).dt.epoch("d").cast(pl.Int32).alias(DAY))
        .unique([CUSTOMER, BASKETS_AGO])
        .group_by(DAY)
        .len()
        .sort(DAY)
        .select(DAY, pl.col("len").cum_sum().alias("_all"))
    )


def trending_asof(timeline: pl.DataFrame, days: pl.Series, n: int) -> pl.DataFrame:
    """Return the ``n`` items with the most baskets in the 28 days before each day of ``days`` (``_ref_day``, ``_it``,
    ``_trend_rank``: 1 = the most).

    Ties go to the lower item index. The window sums of every distinct day come from one sparse product (a banded
    days × days matrix times the days × items counts), so the cost hardly grows with the number of days.
    """
    wanted = np.unique(days.drop_nulls().to_numpy()).astype(np.int64)
    empty = pl.DataFrame(schema={REF_DAY: pl.Int32, ITEM: pl.Int32, TREND_RANK: pl.Int32})
    if timeline.is_empty() or wanted.size == 0 or n <= 0:
        return empty
    day = timeline.get_column(DAY).to_numpy().astype(np.int64)
    item = timeline.get_column(ITEM).to_numpy().astype(np.int64)
    first = int(day.min())
    counts = sp.csr_matrix(
        (timeline.get_column("_day_lines").to_numpy().astype(np.float64), (day - first, item)),
        shape=(int(day.max()) - first + 1, int(item.max()) + 1),
    )
    # row j of `window`: ones on the days [wanted[j] - 28, wanted[j] - 1] that lie within the timeline
    starts = np.clip(wanted - TREND_DAYS - first, 0, counts.shape[0])
    stops = np.clip(wanted - first, 0, counts.shape[0])
    lengths = stops - starts
    cols = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)] or [np.zeros(0, np.int64)])
    window = sp.csr_matrix(
        (np.ones(cols.size), cols, np.concatenate([[0], np.cumsum(lengths)])), shape=(wanted.size, counts.shape[0])
    )
    sums = (window @ counts).tocsr()
    sums.sort_indices()
    out_day, out_item, out_rank = [], [], []
    for j in range(wanted.size):
        lo, hi = sums.indptr[j], sums.indptr[j + 1]
        if lo == hi:
            continue
        values, items = sums.data[lo:hi], sums.indices[lo:hi]
        top = np.lexsort((items, -values))[:n]  # most baskets first, then the lower item index
        out_item.append(items[top])
        out_day.append(np.full(top.size, wanted[j]))
        out_rank.append(np.arange(1, top.size + 1))
    if not out_item:
        return empty
    return pl.DataFrame(
        {
            REF_DAY: np.concatenate(out_day).astype(np.int32),
            ITEM: np.concatenate(out_item).astype(np.int32),
            TREND_RANK: np.concatenate(out_rank).astype(np.int32),
        }
    )
