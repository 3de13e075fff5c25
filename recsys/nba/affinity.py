"""Affinity of each customer to each offer's targets, in [0, 1], from recommendations and profile categories.

For an offer with target items/categories: half is the share of the customer's top-``TOP_RECS``
recommended items that fall in the targets (the recommenders' view of what they will buy next), half is
whether a target category is among the customer's top-3 categories (what they bought); with no
recommendations the category part carries the whole weight. An offer without targets gets a neutral
0.5 for everyone (it is not about any product), which is also the prior's neutral point.
"""

from __future__ import annotations

import polars as pl

from recsys.columns import Columns, ProfileColumns
from recsys.nba.offers import Offer

TOP_RECS = 20
NEUTRAL = 0.5


def offer_affinity(
    customers: pl.DataFrame, offer: Offer, recommendations: pl.DataFrame | None, items: pl.DataFrame | None
) -> pl.Series:
    """Return one Float64 affinity per row of ``customers`` (which has ``customer_id`` and ``top_categories``)."""
    n = customers.height
    if not offer.target_items and not offer.target_categories:
        return pl.Series("affinity", [NEUTRAL] * n, dtype=pl.Float64)
    cats = list(offer.target_categories)
    in_top = (
        customers.select(
            pl.col(ProfileColumns.top_categories)
            .list.head(3)
            .list.eval(pl.element().is_in(cats))
            .list.any()
            .fill_null(False)
        )
        .to_series()
        .cast(pl.Float64)
    )
    if recommendations is None or recommendations.is_empty():
        return in_top.alias("affinity")
    recs = recommendations.filter(pl.col(Columns.rank) <= TOP_RECS).select(Columns.customer_id, Columns.item_id)
    hit = pl.col(Columns.item_id).is_in(list(offer.target_items))
    if cats and items is not None and Columns.category in items.columns:
        recs = recs.join(items.select(Columns.item_id, Columns.category), on=Columns.item_id, how="left")
        hit = hit | pl.col(Columns.category).is_in(cats).fill_null(False)
    share = recs.group_by(Columns.customer_id).agg(hit.mean().alias("share"))
    joined = customers.select(Columns.customer_id).join(
        share, on=Columns.customer_id, how="left", maintain_order="left"
    )
    rec_share = joined.get_column("share")
    has_recs = rec_share.is_not_null()
    combined = pl.select(
        pl.when(pl.lit(has_recs)).then(0.5 * pl.lit(rec_share) + 0.5 * pl.lit(in_top)).otherwise(pl.lit(in_top))
    ).to_series()
    return combined.alias("affinity")
