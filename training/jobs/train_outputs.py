"""Frames the train job writes besides the models: items, fallback lists, and reasons for recommendations."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.data.catalog import UNCATEGORISED
from recsys.ids import IdMap
from recsys.models import ItemFilter
from recsys.store.keys import Fields

REASON = "reason"
ANCHOR_CHUNK_CUSTOMERS = 50_000  # customers whose reason anchors are joined at once (bounds the join's memory)
LIST = "list"
REPEAT_CATEGORY = "repeat_category"


def items_table(catalog: pl.DataFrame | None, transactions: pl.DataFrame, categories: pl.DataFrame) -> pl.DataFrame:
    """Return one row per purchased item: ``item_id, name, category, price, in_stock, repeat_category``.

    Catalog values win; items missing from the catalog get their id as name, ``uncategorised`` as category, their
    median unit price, and count as in stock.
    """
    seen = transactions.group_by(Columns.item_id).agg(pl.col(Columns.price).median().alias("_median_price"))
    if catalog is not None:
        cols = [c for c in (Columns.name, Columns.category, Columns.price, Columns.in_stock) if c in catalog.columns]
        seen = seen.join(catalog.select(Columns.item_id, *cols).unique(Columns.item_id), on=Columns.item_id, how="left")
    for column, default in (
        (Columns.name, None),
        (Columns.category, UNCATEGORISED),
        (Columns.price, None),
        (Columns.in_stock, True),
    ):
        if column not in seen.columns:
            seen = seen.with_columns(pl.lit(default).alias(column))
    table = seen.select(
        Columns.item_id,
        pl.col(Columns.name).cast(pl.String).fill_null(pl.col(Columns.item_id)),
        pl.col(Columns.category).cast(pl.String).fill_null(UNCATEGORISED),
        pl.col(Columns.price).cast(pl.Float64).fill_null(pl.col("_median_price")),
        pl.col(Columns.in_stock).cast(pl.Boolean).fill_null(True),
    )
    flags = categories.select(Columns.category, REPEAT_CATEGORY)
    return (
        table.join(flags, on=Columns.category, how="left")
        .with_columns(pl.col(REPEAT_CATEGORY).fill_null(False))
        .sort(Columns.item_id)
    )


def fallback_lists(
    popularity: np.ndarray,
    trending: np.ndarray | None,
    item_ids: IdMap,
    items: pl.DataFrame,
    item_filter: ItemFilter,
    k: int,
) -> pl.DataFrame:
    """Return ``list, item_id, rank, score``: ``popular``, ``trending`` and ``category:<name>`` top-``k`` lists.

    Only items that may be shown (in stock, not excluded) are listed; ties go to the lower item id.
    """
    showable = ~item_filter.blocked(len(item_ids))
    frame = (
        pl.DataFrame(
            {
                Columns.item_id: pl.Series(item_ids.external_ids, dtype=pl.String),
                "popular": pl.Series(popularity, dtype=pl.Float32),
                "trending": pl.Series(trending if trending is not None else popularity, dtype=pl.Float32),
            }
        )
        .filter(pl.Series(showable))
        .join(items.select(Columns.item_id, Columns.category), on=Columns.item_id, how="left")
    )

    def top(scores: str, name: pl.Expr, by: list[str] | None = None) -> pl.DataFrame:
        ranked = frame.sort([scores, Columns.item_id], descending=[True, False])
        ranked = ranked.group_by(by, maintain_order=True).head(k) if by else ranked.head(k)
        rank = (
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(by)
            if by
            else pl.int_range(1, pl.len() + 1, dtype=pl.Int32)
        )
        return ranked.select(
            name.alias(LIST), Columns.item_id, rank.alias(Columns.rank), pl.col(scores).alias(Columns.score)
        )

    lists = [top("popular", pl.lit(Fields.FALLBACK_POPULAR)), top("trending", pl.lit(Fields.FALLBACK_TRENDING))]
    category_list = pl.lit(Fields.FALLBACK_CATEGORY_PREFIX) + pl.col(Columns.category).fill_null(UNCATEGORISED)
    lists.append(top("popular", category_list, [Columns.category]))
    return pl.concat(lists)


def with_reasons(
    recs: pl.DataFrame, transactions: pl.DataFrame, now: datetime, similar: pl.DataFrame, items: pl.DataFrame
) -> pl.DataFrame:
    """Add ``source`` and ``reason`` to ``customer_id, item_id, rank, score`` recommendations.

    ``buy_again`` (the customer bought the item before): "bought 5 times, last 12 days ago".
    ``personalized``: "customers who buy <an item the customer bought> also buy this", from the similar-items table,
    else "popular with customers who shop like you".
    """
    pair = [Columns.customer_id, Columns.item_id]
    history = transactions.group_by(pair).agg(
        pl.col(Columns.order_id).n_unique().alias("_times"), pl.col(Columns.timestamp).max().alias("_last")
    )
    out = recs.join(history, on=pair, how="left")
    days = ((pl.lit(now) - pl.col("_last")).dt.total_days()).cast(pl.Int64)
    times = pl.when(pl.col("_times") == 1).then(pl.lit("once")).otherwise(pl.format("{} times", pl.col("_times")))
    when = (
        pl.when(days <= 0)
        .then(pl.lit("today"))
        .when(days == 1)
        .then(pl.lit("yesterday"))
        .otherwise(pl.format("{} days ago", days))
    )

    # For a new item: the most similar item this customer already bought ("customers who buy X also buy this").
    new_items = out.filter(pl.col("_times").is_null()).select(pair)
    anchors = _anchors(new_items, history.select(pair), similar).join(
        items.select(pl.col(Columns.item_id).alias("_anchor"), pl.col(Columns.name).alias("_anchor_name")),
        on="_anchor",
        how="left",
    )
    anchors = anchors.select(*pair, "_anchor_name")
    out = out.join(anchors, on=pair, how="left")
    bought = pl.col("_times").is_not_null()
    return out.select(
        *pair,
        Columns.rank,
        Columns.score,
        pl.when(bought).then(pl.lit("buy_again")).otherwise(pl.lit("personalized")).alias(Columns.source),
        pl.when(bought)
        .then(pl.format("bought {}, last {}", times, when))
        .when(pl.col("_anchor_name").is_not_null())
        .then(pl.format("customers who buy {} also buy this", pl.col("_anchor_name")))
        .otherwise(pl.lit("popular with customers who shop like you"))
        .alias(REASON),
    ).sort(Columns.customer_id, Columns.rank)


def _anchors(
    new_items: pl.DataFrame, bought: pl.DataFrame, similar: pl.DataFrame, chunk: int = ANCHOR_CHUNK_CUSTOMERS
) -> pl.DataFrame:
    """Per (customer, new item): ``_anchor``, the item the customer bought that lists it as most similar.

    Joined from the customer's purchases (each bought item has at most ``k`` similar items), not from the new items:
    a popular item is in the similar list of thousands of items, so joining from it multiplies every recommendation
    of it by thousands of rows (billions at 1M customers). Customers are taken ``chunk`` at a time (by a hash of
    their id) so that the join stays bounded; ties go to the lower anchor id.
    """
    pair = [Columns.customer_id, Columns.item_id]
    edges = similar.select(
        pl.col(Columns.item_id).alias("_anchor"),
        pl.col("similar_item_id").alias(Columns.item_id),
        pl.col(Columns.score).alias("_sim"),
    )
    bought = bought.select(Columns.customer_id, pl.col(Columns.item_id).alias("_anchor"))
    empty = pl.DataFrame(schema={**new_items.select(pair).schema, "_anchor": edges.schema["_anchor"]})
    if new_items.is_empty() or edges.is_empty():
        return empty
    parts = max(1, -(-new_items.get_column(Columns.customer_id).n_unique() // chunk))
    part = pl.col(Columns.customer_id).hash(seed=0) % parts
    found = []
    for p in range(parts):
        wanted = new_items.filter(part == p)
        found.append(
            bought.filter(part == p)
            .join(edges, on="_anchor")
            .join(wanted, on=pair, how="semi")
            .sort([*pair, "_sim", "_anchor"], descending=[False, False, True, False])
            .unique(pair, keep="first", maintain_order=True)
            .select(*pair, "_anchor")
        )
    return pl.concat(found) if found else empty
