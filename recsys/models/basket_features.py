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

# Internal column names (prefixed so they never clash with a transaction column): customer index, item index,
# basket time (epoch seconds), baskets ago (1 = the customer's last basket), quantity, and the training label.
CUSTOMER, ITEM, TIME, BASKETS_AGO, QUANTITY, LABEL = "_cu", "_it", "_t", "_rl", "_q", "_y"
_DAY = 86_400.0
_TREND_DAYS = 28
_DAY_COL, _REF_DAY = "_day", "_ref_day"  # a day (days since the epoch) and a customer's reference day
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
    # customer
    "customer_baskets",
    "customer_items",
    "customer_basket_size",
    "customer_repeat_share",
    "customer_days_between_baskets",
)
# The item features, read "as of" each customer's reference day (the day of their last basket in the history).
_ITEM_FEATURES = ("item_buyers", "item_repeat_rate", "item_baskets_per_buyer", "item_basket_rate", "item_recent_lines")


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


def item_timeline(lines: pl.DataFrame) -> pl.DataFrame:
    """Return, per (item, day with a purchase), the item's history up to and including that day.

    Columns: ``_it``, ``_day`` (days since the epoch, UTC), ``_day_lines`` (baskets with the item that day) and the
    running totals ``_cum_lines`` (baskets with the item), ``_cum_buyers`` (customers who bought it) and
    ``_cum_repeat`` (customers who bought it in two baskets or more). Sorted by ``_day``: every item feature is read
    from it "as of" a day with :func:`item_stats_asof`, so no customer's features see a purchase made after
    their own reference day.
    """
    nth = pl.col(BASKETS_AGO).rank(method="ordinal", descending=True).over(CUSTOMER, ITEM)  # 1 = first purchase
    daily = (
        lines.select(ITEM, pl.col(TIME).dt.epoch("d").cast(pl.Int32).alias(_DAY_COL), nth.alias("_n"))
        .group_by(ITEM, _DAY_COL)
        .agg(
            pl.len().cast(pl.Int32).alias("_day_lines"),
            (pl.col("_n") == 1).sum().cast(pl.Int32).alias("_first"),
            (pl.col("_n") == 2).sum().cast(pl.Int32).alias("_second"),
        )
        .sort(ITEM, _DAY_COL)
    )
    return (
        daily.with_columns(
            pl.col("_day_lines").cum_sum().over(ITEM).alias("_cum_lines"),
            pl.col("_first").cum_sum().over(ITEM).alias("_cum_buyers"),
            pl.col("_second").cum_sum().over(ITEM).alias("_cum_repeat"),
        )
        .drop("_first", "_second")
        .sort(_DAY_COL, ITEM)
    )


def item_stats_asof(frame: pl.DataFrame, timeline: pl.DataFrame, baskets: pl.DataFrame) -> pl.DataFrame:
    """Add the item features of ``frame``'s (``_it``, ``_ref_day``) rows from the purchases made *before* that day.

    ``item_buyers``, ``item_repeat_rate``, ``item_baskets_per_buyer``, ``item_basket_rate`` (share of all baskets
    that held the item) and ``item_recent_lines`` (baskets with it in the 28 days before the reference day).
    ``baskets``: :func:`baskets_by_day` of the same lines. Items not bought before the day get 0 buyers.
    """
    if frame.is_empty():
        return frame.with_columns(*[pl.lit(0.0).alias(c) for c in _ITEM_FEATURES])
    right = timeline.select(_DAY_COL, ITEM, "_cum_lines", "_cum_buyers", "_cum_repeat")
    left = frame.with_row_index("_row").with_columns((pl.col(_REF_DAY) - 1).alias(_DAY_COL)).sort(_DAY_COL)
    # both sides are sorted by day, hence within each item too (polars cannot check that itself with `by`)
    now = left.join_asof(right, on=_DAY_COL, by=ITEM, strategy="backward", check_sortedness=False)
    before = (
        left.select("_row", ITEM, (pl.col(_REF_DAY) - 1 - _TREND_DAYS).alias(_DAY_COL))
        .sort(_DAY_COL)
        .join_asof(
            right.select(_DAY_COL, ITEM, pl.col("_cum_lines").alias("_old_lines")),
            on=_DAY_COL,
            by=ITEM,
            check_sortedness=False,
        )
        .select("_row", "_old_lines")
    )
    total = left.select("_row", _DAY_COL).join_asof(baskets, on=_DAY_COL, strategy="backward").select("_row", "_all")
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
        )
        .sort("_row")
        .drop("_row", _DAY_COL, "_cum_lines", "_cum_buyers", "_cum_repeat", "_old_lines", "_all")
    )


def baskets_by_day(lines: pl.DataFrame) -> pl.DataFrame:
    """Return ``_day`` → ``_all`` (every customer's baskets up to and including that day), sorted by day."""
    return (
        lines.select(CUSTOMER, BASKETS_AGO, pl.col(TIME).dt.epoch("d").cast(pl.Int32).alias(_DAY_COL))
        .unique([CUSTOMER, BASKETS_AGO])
        .group_by(_DAY_COL)
        .len()
        .sort(_DAY_COL)
        .select(_DAY_COL, pl.col("len").cum_sum().alias("_all"))
    )


def trending_asof(timeline: pl.DataFrame, days: pl.Series, n: int) -> pl.DataFrame:
    """Return the ``n`` items with the most baskets in the 28 days before each day of ``days`` (``_ref_day``, ``_it``).

    Ties go to the lower item index. One pass per distinct day (at most the data's length in days).
    """
    daily = timeline.select(_DAY_COL, ITEM, "_day_lines")
    frames = []
    for day in days.unique().sort().to_list():
        window = daily.filter(pl.col(_DAY_COL).is_between(day - _TREND_DAYS, day - 1))
        if window.is_empty():
            continue
        top = (
            window.group_by(ITEM)
            .agg(pl.col("_day_lines").sum().alias("_hot"))
            .sort(["_hot", ITEM], descending=[True, False])
            .head(n)
        )
        frames.append(top.select(pl.lit(day, pl.Int32).alias(_REF_DAY), ITEM))
    if not frames:
        return pl.DataFrame(schema={_REF_DAY: pl.Int32, ITEM: pl.Int32})
    return pl.concat(frames)


def candidate_features(
    lines: pl.DataFrame,
    cutoff: int,
    candidates: int,
    explore_candidates: int,
    customers: pl.Series | None = None,
    context: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Features of every candidate as of ``cutoff``: the history is the baskets with ``_rl > cutoff``.

    Returns ``_cu``, ``_it`` and :data:`FEATURES` (float32), one row per candidate; empty when no history is left.
    ``customers``: only these customers' candidates. Item features and the trending candidates are those of the
    day of each customer's last basket in the history: only purchases (of anyone) made before that day count, so a
    household's features never depend on what others bought after it. ``context``: ``(item_timeline(lines),
    baskets_by_day(lines))`` when the caller computes them once for several cutoffs.
    """
    h = lines.filter(pl.col(BASKETS_AGO) > cutoff).with_columns((pl.col(BASKETS_AGO) - cutoff).alias(BASKETS_AGO))
    if customers is not None:
        h = h.filter(pl.col(CUSTOMER).is_in(customers.implode()))
    if h.is_empty():
        return pl.DataFrame(schema={CUSTOMER: pl.Int32, ITEM: pl.Int32, **{f: pl.Float32 for f in FEATURES}})
    timeline, baskets = context if context is not None else (item_timeline(lines), baskets_by_day(lines))
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
            pl.col("_t_last").dt.epoch("d").cast(pl.Int32).alias(_REF_DAY),
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
    pairs = pairs.join(cust.select(CUSTOMER, "customer_baskets", _REF_DAY, *customer_cols), on=CUSTOMER).with_columns(
        (pl.col("baskets_with_item") / pl.col("customer_baskets")).alias("basket_share"),
        (pl.col("baskets_with_item") / pl.col("baskets_since_first")).alias("share_since_first"),
        pl.when(pl.col("baskets_with_item") > 1)
        .then((pl.col("days_since_first") - pl.col("days_since_last")) / (pl.col("baskets_with_item") - 1))
        .otherwise(None)
        .alias("repurchase_days"),
    )
    pairs = pairs.with_columns((pl.col("days_since_last") / pl.col("repurchase_days")).alias("cycle_position"))
    pairs = item_stats_asof(pairs, timeline, baskets)
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
    frames = [pairs]
    if explore_candidates > 0:
        hot = trending_asof(timeline, cust.get_column(_REF_DAY), explore_candidates)
        new = (
            cust.select(CUSTOMER, "customer_baskets", _REF_DAY, *customer_cols)
            .join(hot, on=_REF_DAY)
            .join(bought, on=[CUSTOMER, ITEM], how="anti")
        )
        frames.append(item_stats_asof(new, timeline, baskets).with_columns(pl.lit(1.0).alias("is_new")))
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.sort(CUSTOMER, pl.col("is_new"), ITEM).select(
        pl.col(CUSTOMER).cast(pl.Int32),
        pl.col(ITEM).cast(pl.Int32),
        # inf (e.g. cycle_position after two purchases on one day) becomes a large finite value: "long overdue"
        *[
            pl.col(f).cast(pl.Float64).fill_null(_MISSING).fill_nan(_MISSING).clip(-1e9, 1e9).cast(pl.Float32)
            for f in FEATURES
        ],
    )


def training_frame(
    lines: pl.DataFrame,
    target_baskets: int,
    candidates: int,
    explore_candidates: int,
    horizon_days: float | None = None,
    customers: pl.Series | None = None,
    context: tuple[pl.DataFrame, pl.DataFrame] | None = None,
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
    context = context if context is not None else (item_timeline(lines), baskets_by_day(lines))
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
