"""Response data from campaign history (The Complete Journey's campaigns, coupons and redemptions).

One row per (household, campaign) the household received, with features computed **as of the
campaign's start date** from transactions strictly before it (no look-ahead), and the label
``redeemed`` (any coupon of that campaign redeemed by the household). Only
``days_since_last_purchase`` means exactly what the profile field of that name means; the others are
named for what they are here (90-day windows, spend share on the coupon's products, past responses), so
a model trained on them is never silently fed a differently computed profile column.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

FEATURES = (
    "days_since_last_purchase",
    "baskets_90d",
    "spend_90d",
    "basket_value",
    "target_spend_share",
    "target_products_bought",
    "coupon_share",
    "past_redemptions",
    "past_campaigns",
    "campaign_size",
    "type_a",
    "type_b",
)
LOG_FEATURES = (
    "days_since_last_purchase",
    "baskets_90d",
    "spend_90d",
    "basket_value",
    "target_products_bought",
    "past_redemptions",
    "past_campaigns",
    "campaign_size",
)
RECENT_DAYS = 90


@dataclass(frozen=True)
class CompleteJourney:
    """The raw tables (column names as in the ``completejourney`` package)."""

    transactions: pl.DataFrame
    campaigns: pl.DataFrame
    descriptions: pl.DataFrame
    coupons: pl.DataFrame
    redemptions: pl.DataFrame


def response_table(cj: CompleteJourney) -> pl.DataFrame:
    """Return one row per received campaign: ids, ``start_date``, :data:`FEATURES`, ``value``, ``redeemed``.

    ``value`` is the campaign's value per redemption known before it starts: mean pre-start spend on its
    coupon products per buying household (a campaign constant used by the value back-test).
    """
    tx = cj.transactions.select(
        "household_id",
        "basket_id",
        "product_id",
        "sales_value",
        "coupon_disc",
        pl.col("transaction_timestamp").cast(pl.Datetime("us")).alias("ts"),
    )
    desc = cj.descriptions.select(
        "campaign_id",
        "campaign_type",
        pl.col("start_date").cast(pl.Datetime("us")),
        pl.col("end_date").cast(pl.Datetime("us")),
    )
    receipts = cj.campaigns.join(desc, on="campaign_id", how="inner")
    redemptions = cj.redemptions.with_columns(pl.col("redemption_date").cast(pl.Datetime("us")))
    label = redemptions.select("household_id", "campaign_id").unique().with_columns(pl.lit(True).alias("redeemed"))
    sizes = cj.coupons.group_by("campaign_id").agg(pl.col("product_id").n_unique().alias("campaign_size"))
    parts = []
    for row in desc.iter_rows(named=True):
        cid, start = row["campaign_id"], row["start_date"]
        before = tx.filter(pl.col("ts") < start)
        products = cj.coupons.filter(pl.col("campaign_id") == cid).select("product_id").unique()
        baskets = before.group_by("household_id", "basket_id").agg(pl.col("sales_value").sum(), pl.col("ts").max())
        hh = baskets.group_by("household_id").agg(
            ((pl.lit(start) - pl.col("ts").max()).dt.total_seconds() / 86_400).alias("days_since_last_purchase"),
            (pl.col("ts") >= pl.lit(start) - pl.duration(days=RECENT_DAYS)).sum().alias("baskets_90d"),
            pl.col("sales_value")
            .filter(pl.col("ts") >= pl.lit(start) - pl.duration(days=RECENT_DAYS))
            .sum()
            .alias("spend_90d"),
            pl.col("sales_value").mean().alias("basket_value"),
        )
        spend = before.group_by("household_id").agg(
            pl.col("sales_value").sum().alias("_all"),
            pl.col("coupon_disc").abs().sum().alias("_coupon"),
        )
        target = (
            before.join(products, on="product_id", how="semi")
            .group_by("household_id")
            .agg(
                pl.col("sales_value").sum().alias("_target"),
                pl.col("product_id").n_unique().alias("target_products_bought"),
            )
        )
        value = float(target.select(pl.col("_target").mean()).item() or 0.0) if target.height else 0.0
        past = (
            redemptions.filter(pl.col("redemption_date") < start)
            .group_by("household_id")
            .agg(pl.len().alias("past_redemptions"))
        )
        past_c = (
            receipts.filter(pl.col("start_date") < start).group_by("household_id").agg(pl.len().alias("past_campaigns"))
        )
        who = receipts.filter(pl.col("campaign_id") == cid).select(
            "household_id", "campaign_id", "campaign_type", "start_date"
        )
        frame = (
            who.join(hh, on="household_id", how="left")
            .join(spend, on="household_id", how="left")
            .join(target, on="household_id", how="left")
            .join(past, on="household_id", how="left")
            .join(past_c, on="household_id", how="left")
            .with_columns(
                (pl.col("_target").fill_null(0) / pl.col("_all")).alias("target_spend_share"),
                (pl.col("_coupon").fill_null(0) / pl.col("_all")).alias("coupon_share"),
                pl.col("target_products_bought").fill_null(0),
                pl.col("past_redemptions").fill_null(0),
                pl.col("past_campaigns").fill_null(0),
                pl.lit(value).alias("value"),
            )
        )
        parts.append(frame)
    table = (
        pl.concat(parts, how="diagonal_relaxed")
        .join(sizes, on="campaign_id", how="left")
        .join(label, on=["household_id", "campaign_id"], how="left")
    )
    return (
        table.with_columns(
            pl.col("redeemed").fill_null(False),
            (pl.col("campaign_type") == "Type A").cast(pl.Float64).alias("type_a"),
            (pl.col("campaign_type") == "Type B").cast(pl.Float64).alias("type_b"),
            *[
                pl.col(f).cast(pl.Float64)
                for f in FEATURES
                if f not in ("type_a", "type_b")  # the campaign-type flags are built above
            ],
        )
        .select("household_id", "campaign_id", "start_date", *FEATURES, "value", "redeemed")
        .sort("start_date", "campaign_id", "household_id")
    )
