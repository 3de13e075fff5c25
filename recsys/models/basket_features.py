"""Basket-history features for the learned hybrid (:mod:`recsys.models.ranker`): candidates and their features.

Every feature is computed as of a per-customer cutoff (see the ranker's module docstring for the training scheme):
the customer × item and customer features from the customer's baskets before it, the item features and the
trending (explore) candidates from everyone's purchases made before the *day* of the customer's last basket in that
history (its reference day). So a household's features never depend on what others bought after it, whether the
household is a training target or is being scored. :data:`FEATURES` lists them in the order the ranker reads them.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from recsys.columns import Columns
from recsys.models.item_history import (
    BASKETS_AGO,
    CATEGORY,
    CUSTOMER,
    ITEM,
    REF_DAY,
    TIME,
    TREND_RANK,
    ItemContext,
    item_context,
    item_stats_asof,
    trending_asof,
)

# Internal column names (prefixed so they never clash with a transaction column): customer index, item index,
# basket time and baskets ago (1 = the customer's last basket) come from item_history; quantity and training label.
QUANTITY, LABEL = "_q", "_y"
_DAY = 86_400.0
_MISSING = -1.0  # feature value of "not defined" (e.g. a repurchase interval with one purchase); trees split on it

FEATURES: tuple[str, ...] = (
    # customer × item
    "baskets_with_item",  # how many of the customer's baskets held the item
    "baskets_since_last",  # 1 = in the customer's last basket
    "baskets_since_first",
    "days_since_last",  # days from the item's last purchase to the customer's last basket
    "days_since_first",
    "decay_days_30",  # sum over purchases of 0.5 ** (age / 30 days)
    "decay_days_90",
    "decay_days_365",
    "decay_baskets_0.8",  # sum over purchases of 0.8 ** (baskets ago)
    "decay_baskets_0.95",
    "in_last_3_baskets",
    "in_last_10_baskets",
    "quantity",
    "basket_share",  # baskets_with_item / the customer's baskets
    "share_since_first",  # baskets_with_item / baskets since the first purchase of the item
    "repurchase_days",  # the customer's mean days between purchases of the item (-1: bought once)
    "cycle_position",  # days_since_last / repurchase_days (-1: bought once)
    "buy_again",  # decay_days_90 × item_repeat_rate ** 0.5 (the repeat list's order)
    "buy_again_relative",  # buy_again / the customer's best buy_again
    "buy_again_rank",  # 1 = the customer's best
    "decay_days_90_relative",
    "is_new",  # 1 for explore candidates (never bought by the customer)
    # item
    "item_buyers",
    "item_repeat_rate",  # share of the item's buyers who bought it in two baskets or more
    "item_baskets_per_buyer",
    "item_basket_rate",  # share of all baskets that held the item
    "item_recent_lines",  # baskets with the item in the 28 days before the customer's reference day
    "item_repurchase_days",  # everyone's mean days between consecutive purchases of the item (-1: no repeat yet)
    "item_cycle_position",  # days_since_last / item_repurchase_days (-1 for a new item or without a repeat)
    # customer
    "customer_baskets",
    "customer_items",
    "customer_basket_size",
    "customer_repeat_share",
    "customer_days_between_baskets",
    # customer × category (the candidate's category in the customer's history; -1 without a catalog)
    "category_baskets",
    "category_baskets_since_last",
    "category_days_since_last",
    "category_decay_days_30",
    "category_repurchase_days",
    "category_cycle_position",
    "category_share",  # category_baskets / the customer's baskets
    "item_share_of_category",  # baskets_with_item / category_baskets (0 for a new item)
)


def basket_lines(transactions: pl.DataFrame, customers: Any, items: Any) -> pl.DataFrame:
    """Return one row per (customer, basket, item) on internal indices, with ``_rl`` = baskets from the last (1 = last).

    ``customers`` / ``items`` are the model's :class:`~recsys.ids.IdMap`; lines of other ids are dropped.
    Raises ``ValueError`` naming a missing column.
    """
    missing = [c for c in (Columns.customer_id, Columns.item_id, Columns.timestamp) if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"the learned hybrid needs purchase lines with {', '.join(missing)}; got columns {transactions.columns}"
        )
    order_key = Columns.order_id if Columns.order_id in transactions.columns else Columns.timestamp
    quantity = pl.col(Columns.quantity).cast(pl.Float64) if Columns.quantity in transactions.columns else pl.lit(1.0)
    lines = transactions.select(
        pl.col(Columns.customer_id).cast(pl.String),
        pl.col(Columns.item_id).cast(pl.String),
        pl.col(Columns.timestamp).alias(TIME),
        pl.col(order_key).cast(pl.String).alias("_order"),
        quantity.alias(QUANTITY),
    )
    lines = customers.to_internal_frame(lines, Columns.customer_id, CUSTOMER)
    lines = items.to_internal_frame(lines, Columns.item_id, ITEM).drop(Columns.customer_id, Columns.item_id)
    orders = (
        lines.group_by(CUSTOMER, "_order")
        .agg(pl.col(TIME).min())
        .with_columns(
            pl.struct(TIME, "_order")
            .rank(method="ordinal", descending=True)
            .over(CUSTOMER)
            .cast(pl.Int32)
            .alias(BASKETS_AGO)
        )
    )
    per_item = lines.group_by(CUSTOMER, "_order", ITEM).agg(pl.col(QUANTITY).sum())
    # A fixed row order: float sums over groups follow it, and the same data must give the same model.
    return (
        per_item.join(orders, on=[CUSTOMER, "_order"])
        .select(CUSTOMER, ITEM, TIME, BASKETS_AGO, QUANTITY)
        .sort(CUSTOMER, BASKETS_AGO, ITEM)
    )


def candidate_features(
    lines: pl.DataFrame,
    cutoff: int,
    candidates: int,
    explore_candidates: int,
    customers: pl.Series | None = None,
    context: ItemContext | None = None,
) -> pl.DataFrame:
    """Features of every candidate as of ``cutoff``: the history is the baskets with ``_rl > cutoff``.

    Returns ``_cu``, ``_it`` and :data:`FEATURES` (float32), one row per candidate; empty when no history is left.
    ``customers``: only these customers' candidates. Item features and the trending candidates are those of the
    day of each customer's last basket in the history: only purchases (of anyone) made before that day count, so a
    household's features never depend on what others bought after it. ``context``: ``item_context(lines, …)`` when the
    caller computes it once for several cutoffs (its categories give the customer × category features; without
    them those are -1).
    """
    h = lines.filter(pl.col(BASKETS_AGO) > cutoff).with_columns((pl.col(BASKETS_AGO) - cutoff).alias(BASKETS_AGO))
    if customers is not None:
        h = h.filter(pl.col(CUSTOMER).is_in(customers.implode()))
    if h.is_empty():
        return pl.DataFrame(schema={CUSTOMER: pl.Int32, ITEM: pl.Int32, **{f: pl.Float32 for f in FEATURES}})
    context = context if context is not None else item_context(lines)
    timeline, baskets, categories = context.timeline, context.baskets, context.categories
    cust = (
        h.group_by(CUSTOMER)
        .agg(
            pl.col(BASKETS_AGO).max().alias("customer_baskets"),
            pl.col(TIME).max().alias("_t_last"),
            pl.col(TIME).min().alias("_t_first"),
            pl.len().alias("_lines"),
            pl.col(ITEM).n_unique().alias("customer_items"),
        )
        .with_columns(
            (pl.col("_lines") / pl.col("customer_baskets")).alias("customer_basket_size"),
            (1.0 - pl.col("customer_items") / pl.col("_lines")).alias("customer_repeat_share"),
            (
                (pl.col("_t_last") - pl.col("_t_first")).dt.total_seconds()
                / _DAY
                / pl.max_horizontal(pl.col("customer_baskets") - 1, 1)
            ).alias("customer_days_between_baskets"),
            pl.col("_t_last").dt.epoch("d").cast(pl.Int32).alias(REF_DAY),
        )
    )
    age = (pl.col("_t_last") - pl.col(TIME)).dt.total_seconds() / _DAY
    h = h.join(cust.select(CUSTOMER, "_t_last"), on=CUSTOMER).with_columns(age.alias("_age"))
    a, rl = pl.col("_age"), pl.col(BASKETS_AGO)
    pairs = h.group_by(CUSTOMER, ITEM).agg(
        pl.len().alias("baskets_with_item"),
        rl.min().alias("baskets_since_last"),
        rl.max().alias("baskets_since_first"),
        a.min().alias("days_since_last"),
        a.max().alias("days_since_first"),
        (0.5 ** (a / 30.0)).sum().alias("decay_days_30"),
        (0.5 ** (a / 90.0)).sum().alias("decay_days_90"),
        (0.5 ** (a / 365.0)).sum().alias("decay_days_365"),
        (0.8 ** (rl - 1)).sum().alias("decay_baskets_0.8"),
        (0.95 ** (rl - 1)).sum().alias("decay_baskets_0.95"),
        (rl <= 3).sum().alias("in_last_3_baskets"),
        (rl <= 10).sum().alias("in_last_10_baskets"),
        pl.col(QUANTITY).sum().alias("quantity"),
    )
    customer_cols = ["customer_items", "customer_basket_size", "customer_repeat_share", "customer_days_between_baskets"]
    pairs = pairs.join(cust.select(CUSTOMER, "customer_baskets", REF_DAY, *customer_cols), on=CUSTOMER).with_columns(
        (pl.col("baskets_with_item") / pl.col("customer_baskets")).alias("basket_share"),
        (pl.col("baskets_with_item") / pl.col("baskets_since_first")).alias("share_since_first"),
        pl.when(pl.col("baskets_with_item") > 1)
        .then((pl.col("days_since_first") - pl.col("days_since_last")) / (pl.col("baskets_with_item") - 1))
        .otherwise(None)
        .alias("repurchase_days"),
    )
    pairs = pairs.with_columns((pl.col("days_since_last") / pl.col("repurchase_days")).alias("cycle_position"))
    pairs = item_stats_asof(pairs, timeline, baskets).with_columns(
        (pl.col("days_since_last") / pl.col("item_repurchase_days")).alias("item_cycle_position")
    )
    score = pl.col("decay_days_90") * pl.col("item_repeat_rate").sqrt()
    bought = pairs.select(CUSTOMER, ITEM)  # every item each customer bought, before the cut to the best `candidates`
    pairs = (
        pairs.sort(CUSTOMER, ITEM)  # group_by order is arbitrary; the ordinal rank below breaks ties by position
        .with_columns(score.alias("buy_again"))
        .with_columns(
            (pl.col("buy_again") / pl.col("buy_again").max().over(CUSTOMER)).alias("buy_again_relative"),
            pl.col("buy_again").rank(method="ordinal", descending=True).over(CUSTOMER).alias("buy_again_rank"),
            (pl.col("decay_days_90") / pl.col("decay_days_90").max().over(CUSTOMER)).alias("decay_days_90_relative"),
            pl.lit(0.0).alias("is_new"),
        )
        .filter(pl.col("buy_again_rank") <= candidates)
    )
    category_stats = category_history(h, categories)
    # after the cut: the categories do not enter the repeat list's order, and a customer bought ~3× more items
    frames = [_with_categories(pairs, category_stats, categories)]
    if explore_candidates > 0:
        if context.trending is not None and context.trending_n >= explore_candidates:
            hot = context.trending.filter(pl.col(TREND_RANK) <= explore_candidates)
        else:
            hot = trending_asof(timeline, cust.get_column(REF_DAY), explore_candidates)
        new = (
            cust.select(CUSTOMER, "customer_baskets", REF_DAY, *customer_cols)
            .join(hot.select(REF_DAY, ITEM), on=REF_DAY)
            .join(bought, on=[CUSTOMER, ITEM], how="anti")
        )
        new = _with_categories(item_stats_asof(new, timeline, baskets), category_stats, categories)
        frames.append(new.with_columns(pl.lit(1.0).alias("is_new")))
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.sort(CUSTOMER, pl.col("is_new"), ITEM).select(
        pl.col(CUSTOMER).cast(pl.Int32),
        pl.col(ITEM).cast(pl.Int32),
        # inf (e.g. cycle_position after two purchases on one day) becomes a large finite value: "long overdue"
        *[
            (pl.col(f) if f in out.columns else pl.lit(None))  # category features without a catalog: missing
            .cast(pl.Float64)
            .fill_null(_MISSING)
            .fill_nan(_MISSING)
            .clip(-1e9, 1e9)
            .cast(pl.Float32)
            .alias(f)
            for f in FEATURES
        ],
    )


def category_history(h: pl.DataFrame, categories: pl.DataFrame | None) -> pl.DataFrame | None:
    """Return per (customer, category) of the history ``h`` (which has ``_age``) the customer × category features,
    or ``None`` without ``categories``."""
    if categories is None:
        return None
    return (
        h.join(categories, on=ITEM)
        .group_by(CUSTOMER, CATEGORY, BASKETS_AGO)
        .agg(pl.col("_age").min())
        .group_by(CUSTOMER, CATEGORY)
        .agg(
            pl.len().alias("category_baskets"),
            pl.col(BASKETS_AGO).min().alias("category_baskets_since_last"),
            pl.col("_age").min().alias("category_days_since_last"),
            pl.col("_age").max().alias("_category_first"),
            (0.5 ** (pl.col("_age") / 30.0)).sum().alias("category_decay_days_30"),
        )
        .with_columns(
            pl.when(pl.col("category_baskets") > 1)
            .then((pl.col("_category_first") - pl.col("category_days_since_last")) / (pl.col("category_baskets") - 1))
            .otherwise(None)
            .alias("category_repurchase_days")
        )
        .with_columns(
            (pl.col("category_days_since_last") / pl.col("category_repurchase_days")).alias("category_cycle_position")
        )
        .drop("_category_first")
    )


def _with_categories(
    frame: pl.DataFrame, category_stats: pl.DataFrame | None, categories: pl.DataFrame | None
) -> pl.DataFrame:
    """Add the customer × category features (:func:`category_history`) of ``frame``'s candidates; without
    ``categories`` they stay missing."""
    if categories is None or category_stats is None or frame.is_empty():
        return frame
    with_cat = frame.join(categories, on=ITEM, how="left").join(category_stats, on=[CUSTOMER, CATEGORY], how="left")
    return with_cat.with_columns(
        (pl.col("category_baskets") / pl.col("customer_baskets")).alias("category_share"),
        (pl.col("baskets_with_item") / pl.col("category_baskets")).alias("item_share_of_category")
        if "baskets_with_item" in with_cat.columns
        else pl.lit(0.0).alias("item_share_of_category"),
    ).drop(CATEGORY)


def training_frame(
    lines: pl.DataFrame,
    target_baskets: int,
    candidates: int,
    explore_candidates: int,
    horizon_days: float | None = None,
    customers: pl.Series | None = None,
    context: ItemContext | None = None,
) -> pl.DataFrame:
    """Candidates labelled ``_y`` = 1 when in the customer's ``r``-th last basket, for ``r = 1 … target_baskets``.

    With ``horizon_days``, the target is every basket from the ``r``-th last one that starts within that many days
    of it ("what will they buy in the next 30 days" instead of "in the next basket").

    ``customers``: train on these customers only (item features still use everyone's purchases before each
    customer's reference day). ``context``: as for :func:`candidate_features`.
    Features come from the baskets before the target; only (customer, r) groups with a positive are kept
    (a group without one teaches a ranker nothing). Sorted by (``r``, customer) so groups are contiguous.
    """
    frames = []
    # the trending lists of every day once for all cutoffs (a cutoff's lists depend only on its customers' days)
    context = context if context is not None else item_context(lines, trending=explore_candidates)
    for r in range(1, target_baskets + 1):
        feats = candidate_features(lines, r, candidates, explore_candidates, customers, context)
        if feats.is_empty():
            break
        if horizon_days is None:
            target = lines.filter(pl.col(BASKETS_AGO) == r)
        else:
            start = lines.filter(pl.col(BASKETS_AGO) == r).group_by(CUSTOMER).agg(pl.col(TIME).min().alias("_start"))
            target = (
                lines.filter(pl.col(BASKETS_AGO) <= r)
                .join(start, on=CUSTOMER)
                .filter(pl.col(TIME) < pl.col("_start") + pl.duration(seconds=horizon_days * _DAY))
            )
        target = target.select(CUSTOMER, ITEM).unique().with_columns(pl.lit(1, pl.Int8).alias(LABEL))
        feats = feats.join(target, on=[CUSTOMER, ITEM], how="left").with_columns(
            pl.col(LABEL).fill_null(0), pl.lit(r, pl.Int32).alias("_r")
        )
        positive = feats.group_by(CUSTOMER).agg(pl.col(LABEL).max()).filter(pl.col(LABEL) > 0).select(CUSTOMER)
        frames.append(feats.join(positive, on=CUSTOMER, how="semi"))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).sort("_r", CUSTOMER, ITEM)  # a fixed row order: the booster's bagging depends on it
