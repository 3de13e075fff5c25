"""The Complete Journey's campaigns, coupons and redemptions as a standard :class:`ResponseHistory`.

* exposure = a household received a campaign (``campaigns``), from its ``start_date`` to its ``end_date``
  (the end day included);
* outcome = a coupon of the campaign redeemed (``coupon_redemptions``);
* offer items = the campaign's coupon products (``coupons``); offer kind = ``campaign_type``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys.exceptions import DataError
from recsys.nba.response_history import ResponseHistory, exposures_frame, outcomes_frame

FILES = ("campaigns", "campaign_descriptions", "coupons", "coupon_redemptions")


def read_complete_journey(folder: Path) -> ResponseHistory:
    """Read the four campaign tables from ``folder`` (Parquet) and return them in the standard schema.

    Raises ``DataError`` naming the missing file or column.
    """
    tables = {}
    for name in FILES:
        path = Path(folder) / f"{name}.parquet"
        if not path.exists():
            raise DataError(
                f"{path}: not found; The Complete Journey's campaign tables are "
                f"{', '.join(f + '.parquet' for f in FILES)}"
            )
        tables[name] = pl.read_parquet(path)
    return complete_journey_history(**tables)


def complete_journey_history(
    campaigns: pl.DataFrame,
    campaign_descriptions: pl.DataFrame,
    coupons: pl.DataFrame,
    coupon_redemptions: pl.DataFrame,
) -> ResponseHistory:
    """Return the campaign history in the standard schema (column names as in the ``completejourney`` package)."""
    desc = campaign_descriptions.select(
        pl.col("campaign_id").cast(pl.String).alias("offer_id"),
        pl.col("campaign_type").cast(pl.String).alias("kind"),
        pl.col("start_date").cast(pl.Datetime("us")).alias("start"),
        (pl.col("end_date").cast(pl.Datetime("us")) + pl.duration(days=1)).alias("end"),
    )
    received = campaigns.select(
        pl.col("household_id").cast(pl.String).alias("customer_id"),
        pl.col("campaign_id").cast(pl.String).alias("offer_id"),
    ).join(desc.drop("kind"), on="offer_id", how="inner")
    exposures = exposures_frame(received, "campaigns.parquet")
    outcomes = outcomes_frame(
        coupon_redemptions.select(
            pl.col("household_id").cast(pl.String).alias("customer_id"),
            pl.col("campaign_id").cast(pl.String).alias("offer_id"),
            pl.col("redemption_date").alias("timestamp"),
        ),
        "coupon_redemptions.parquet",
    )
    items = coupons.select(
        pl.col("campaign_id").cast(pl.String).alias("offer_id"), pl.col("product_id").cast(pl.String).alias("item_id")
    ).unique()
    return ResponseHistory(
        exposures, outcomes, items, desc.select("offer_id", "kind"), "The Complete Journey campaigns"
    )


def complete_journey_purchases(transactions: pl.DataFrame) -> pl.DataFrame:
    """Return CJ ``transactions`` as standard purchase lines with the optional ``discount`` column.

    Every line with a ``sales_value`` of zero or more counts (the standard loader rejects the many zero-quantity
    lines, which are real baskets here; a line made free by a coupon is a trip and a coupon used); ``discount``
    is the coupon discount (``coupon_disc``) — coupon-prone households redeem campaign coupons more.
    """
    from recsys.columns import Columns
    from recsys.nba.response_features import DISCOUNT

    ts = pl.col("transaction_timestamp")
    if getattr(transactions.schema["transaction_timestamp"], "time_zone", None) is not None:
        ts = ts.dt.replace_time_zone(None)
    return transactions.filter(pl.col("sales_value") >= 0).select(
        pl.col("household_id").cast(pl.String).alias(Columns.customer_id),
        pl.col("product_id").cast(pl.String).alias(Columns.item_id),
        pl.col("basket_id").cast(pl.String).alias(Columns.order_id),
        ts.cast(pl.Datetime("us")).alias(Columns.timestamp),
        pl.col("sales_value").cast(pl.Float64).alias(Columns.amount),
        pl.col("coupon_disc").cast(pl.Float64).alias(DISCOUNT),
    )


def complete_journey_profiles(transactions: pl.DataFrame) -> pl.DataFrame:
    """Return customer profiles (``build_profiles``: RFM segment, lifecycle, value tier, CLV) of CJ households,
    from their positive-value purchase lines."""
    from recsys.analytics.profiles import build_profiles
    from recsys.columns import Columns

    lines = complete_journey_purchases(transactions).filter(pl.col(Columns.amount) > 0)
    lines = lines.with_columns(
        pl.lit(1.0).alias(Columns.quantity),
        pl.col(Columns.amount).alias(Columns.price),
        pl.col(Columns.timestamp).dt.replace_time_zone("UTC"),
    )
    return build_profiles(lines).profiles
