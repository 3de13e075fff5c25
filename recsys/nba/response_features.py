"""Features of a (customer, offer) pair as of a moment, from purchases and responses strictly before it.

One function computes them for training (as of each exposure's start) and for deciding (as of now), so the
model never sees a feature computed two ways. Everything is read through ``< as_of`` filters: a purchase,
redemption or exposure at or after the decision time cannot leak in (``tests/unit/nba/test_response_features``
plants such rows and checks that nothing changes).

Features (``log_`` ones are log1p-transformed by the model):

* ``days_since_last_purchase`` — days from the last purchase to ``as_of`` (missing: never bought);
* ``orders_90d``, ``spend_90d`` — orders and spend in the 90 days before ``as_of`` (missing: never bought);
* ``order_value`` — mean spend per order, all history before ``as_of``;
* ``target_spend_share``, ``target_items_bought`` — share of spend on the offer's items, and how many of them;
* ``past_redemptions``, ``past_exposures`` — the customer's redemptions and exposures (any offer) before
  (counted from the start of the data, so they grow with time: see :data:`FEATURE_SETS`);
* ``redemptions_<w>d``, ``exposures_<w>d`` — the same, in the :data:`HISTORY_WINDOWS` days before ``as_of``;
* ``days_since_last_exposure``, ``days_since_last_redemption`` — days from the customer's last exposure and
  last redemption to ``as_of`` (missing: none before);
* ``discount_share`` — share of spend taken as discounts (only when the purchases carry a ``discount`` column:
  coupon-prone customers redeem coupons);
* ``offer_size`` — number of items the offer is about;
* ``kind=<k>`` — one indicator per offer kind seen in training.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

from recsys.columns import Columns
from recsys.nba.response_history import ResponseHistory

RECENT_DAYS = 90
HISTORY_WINDOWS = (90, 180)  # trailing windows of the response-history counts
CUMULATIVE_FEATURES = (
    "days_since_last_purchase",
    "orders_90d",
    "spend_90d",
    "order_value",
    "target_spend_share",
    "target_items_bought",
    "past_redemptions",
    "past_exposures",
    "offer_size",
)
TRAILING_HISTORY = (
    "redemptions_90d",
    "exposures_90d",
    "days_since_last_exposure",
    "days_since_last_redemption",
)
_PURCHASE_FEATURES = tuple(f for f in CUMULATIVE_FEATURES if f not in ("past_redemptions", "past_exposures"))
# Candidate feature sets, chosen on the training period (``propensity_select``). ``cumulative`` counts the
# response history from the start of the data, so its level drifts upwards with time; ``trailing`` counts it over
# a fixed look-back and adds recency, so a later period looks like an earlier one.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "cumulative": CUMULATIVE_FEATURES,
    "trailing": (*_PURCHASE_FEATURES, *TRAILING_HISTORY),
    "trailing_180d": (
        *_PURCHASE_FEATURES,
        "redemptions_180d",
        "exposures_180d",
        "days_since_last_exposure",
        "days_since_last_redemption",
    ),
}
DEFAULT_FEATURE_SET = "cumulative"
BASE_FEATURES = CUMULATIVE_FEATURES
LOG_FEATURES = (
    "days_since_last_purchase",
    "orders_90d",
    "spend_90d",
    "order_value",
    "target_items_bought",
    "past_redemptions",
    "past_exposures",
    "offer_size",
    *(f"{kind}_{w}d" for w in HISTORY_WINDOWS for kind in ("redemptions", "exposures")),
    "days_since_last_exposure",
    "days_since_last_redemption",
)
DISCOUNT_FEATURE = "discount_share"
DISCOUNT = "discount"  # optional purchases column: discount taken on the line (currency, sign ignored)
KIND_PREFIX = "kind="


def purchases_frame(transactions: pl.DataFrame) -> pl.DataFrame:
    """Return ``customer_id, item_id, order, ts, amount`` (+ ``discount``) from standard transactions.

    ``order`` is ``order_id`` or, without it, the purchase day.
    """
    tx = transactions
    amount = (
        pl.col(Columns.amount) if Columns.amount in tx.columns else pl.col(Columns.quantity) * pl.col(Columns.price)
    )
    ts = pl.col(Columns.timestamp)
    ts = ts.dt.replace_time_zone("UTC") if getattr(tx.schema[Columns.timestamp], "time_zone", None) is None else ts
    order = (
        pl.col(Columns.order_id).cast(pl.String)
        if Columns.order_id in tx.columns
        else pl.col(Columns.timestamp).dt.date().cast(pl.String)
    )
    return tx.select(
        pl.col(Columns.customer_id).cast(pl.String).alias("customer_id"),
        pl.col(Columns.item_id).cast(pl.String).alias("item_id"),
        order.alias("order"),
        ts.cast(pl.Datetime("us", "UTC")).alias("ts"),
        amount.cast(pl.Float64).alias("amount"),
        *([pl.col(DISCOUNT).cast(pl.Float64).abs().fill_null(0.0)] if DISCOUNT in tx.columns else []),
    )


def feature_names(
    purchases: pl.DataFrame, kinds: tuple[str, ...], feature_set: str = DEFAULT_FEATURE_SET
) -> tuple[str, ...]:
    """Return the features of ``feature_set`` (:data:`FEATURE_SETS`) a model fitted on ``purchases`` uses
    (``discount_share`` only when discounts exist)."""
    base = FEATURE_SETS[feature_set]
    return (*base, *((DISCOUNT_FEATURE,) if DISCOUNT in purchases.columns else ()), *kinds)


def kind_features(kinds: list[str]) -> tuple[str, ...]:
    """Return the indicator feature names for ``kinds`` (sorted, so the feature list is stable)."""
    return tuple(f"{KIND_PREFIX}{k}" for k in sorted(set(kinds)))


_HISTORY_COUNTS = (
    "past_redemptions",
    "past_exposures",
    *(f"{kind}_{w}d" for w in HISTORY_WINDOWS for kind in ("redemptions", "exposures")),
)


def _history_counts(events: pl.DataFrame, time: str, as_of: dt.datetime, noun: str, plural: str) -> pl.DataFrame:
    """Per customer: events before ``as_of`` in all, in each trailing window, and days since the last one."""
    before = events.filter(pl.col(time) < as_of)
    return before.group_by("customer_id").agg(
        pl.len().cast(pl.Float64).alias(f"past_{plural}"),
        *[
            (pl.col(time) >= as_of - dt.timedelta(days=w)).sum().cast(pl.Float64).alias(f"{plural}_{w}d")
            for w in HISTORY_WINDOWS
        ],
        ((pl.lit(as_of) - pl.col(time).max()).dt.total_seconds() / 86_400).alias(f"days_since_last_{noun}"),
    )


def features_as_of(
    pairs: pl.DataFrame,
    purchases: pl.DataFrame,
    history: ResponseHistory,
    as_of: dt.datetime,
    kinds: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Return ``pairs`` (``customer_id``, ``offer_id``) with every feature of :data:`FEATURE_SETS` and ``kinds``
    at ``as_of``.

    ``purchases`` come from :func:`purchases_frame`; ``history`` gives past exposures, redemptions, the offers'
    items and kinds. Only rows strictly before ``as_of`` are read.
    """
    pairs = pairs.with_row_index("_pair")
    customers = pairs.select("customer_id").unique()
    before = purchases.filter(pl.col("ts") < as_of).join(customers, on="customer_id", how="semi")
    recent = pl.col("ts") >= as_of - dt.timedelta(days=RECENT_DAYS)
    orders = before.group_by("customer_id", "order").agg(pl.col("amount").sum(), pl.col("ts").max())
    state = orders.group_by("customer_id").agg(
        ((pl.lit(as_of) - pl.col("ts").max()).dt.total_seconds() / 86_400).alias("days_since_last_purchase"),
        recent.sum().cast(pl.Float64).alias("orders_90d"),
        pl.col("amount").filter(recent).sum().alias("spend_90d"),
        pl.col("amount").mean().alias("order_value"),
        pl.col("amount").sum().alias("_spend"),
    )
    if DISCOUNT in before.columns:
        discounts = before.group_by("customer_id").agg(pl.col(DISCOUNT).sum().alias("_discount"))
        state = state.join(discounts, on="customer_id", how="left").with_columns(
            (pl.col("_discount") / pl.col("_spend")).alias(DISCOUNT_FEATURE)
        )
    items = history.offer_items.join(pairs.select("offer_id").unique(), on="offer_id", how="semi")
    target = (
        before.join(items, on="item_id", how="inner")
        .join(pairs.select("customer_id", "offer_id").unique(), on=["customer_id", "offer_id"], how="semi")
        .group_by("customer_id", "offer_id")
        .agg(pl.col("amount").sum().alias("_target"), pl.col("item_id").n_unique().alias("target_items_bought"))
    )
    sizes = items.group_by("offer_id").agg(pl.col("item_id").n_unique().cast(pl.Float64).alias("offer_size"))
    redeemed = _history_counts(history.outcomes, "timestamp", as_of, "redemption", "redemptions")
    shown = _history_counts(history.exposures, "start", as_of, "exposure", "exposures")
    kind_of = history.offer_kinds.unique("offer_id", keep="last")
    frame = (
        pairs.join(state, on="customer_id", how="left")
        .join(target, on=["customer_id", "offer_id"], how="left")
        .join(sizes, on="offer_id", how="left")
        .join(redeemed, on="customer_id", how="left")
        .join(shown, on="customer_id", how="left")
        .join(kind_of.rename({"kind": "_kind"}), on="offer_id", how="left")
        .with_columns(
            (pl.col("_target").fill_null(0.0) / pl.col("_spend")).alias("target_spend_share"),
            pl.col("target_items_bought").fill_null(0).cast(pl.Float64),
            # no purchase before ``as_of`` is unknown history (a customer the data has not seen yet), not zero
            # activity: left missing, the model counts it as the training mean, as it does the recency
            *[
                pl.when(pl.col("_spend").is_not_null()).then(pl.col(c).fill_null(0.0))
                for c in ("orders_90d", "spend_90d")
            ],
            pl.col("offer_size").fill_null(0.0),
            *[pl.col(c).fill_null(0.0) for c in _HISTORY_COUNTS],
            *[
                (pl.col("_kind") == k.removeprefix(KIND_PREFIX)).fill_null(False).cast(pl.Float64).alias(k)
                for k in kinds
            ],
        )
    )
    return frame.sort("_pair").drop("_pair", "_target", "_spend", "_kind", "_discount", strict=False)


def training_features(
    labelled: pl.DataFrame,
    purchases: pl.DataFrame,
    history: ResponseHistory,
    kinds: tuple[str, ...],
    *,
    day_grain: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Return ``labelled`` exposures with features as of each one's ``start`` (rows keep their order).

    With ``day_grain`` the features are taken as of the start of the exposure's UTC day (fewer distinct moments
    for logged events; still no information from the exposure's own day or later).
    """
    moment = pl.col("start").dt.truncate("1d") if day_grain else pl.col("start")
    rows = labelled.with_row_index("_row").with_columns(moment.alias("_as_of"))
    moments = rows.get_column("_as_of").unique().sort().to_list()
    parts = []
    for i, as_of in enumerate(moments):
        chunk = rows.filter(pl.col("_as_of") == as_of)
        parts.append(features_as_of(chunk, purchases, history, as_of, kinds))
        if on_progress is not None:
            on_progress(i + 1, len(moments))
    return pl.concat(parts, how="diagonal_relaxed").sort("_row").drop("_row", "_as_of")
