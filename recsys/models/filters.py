"""What may be shown: the per-item filter every recommender applies, built from the catalog.

Repeat categories. A category is a **repeat category** when, among the customers who bought in it,
at least ``min_repeat_share`` (default 0.30) bought in it on two or more different orders, and at least
``min_buyers`` (default 5) customers bought in it. Milk and bread are; sofas and televisions are not.
Items of a repeat category may be recommended again to a customer who bought them; an item of any other
category is never shown again to a customer who already bought it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.ids import IdMap

REPEAT_CATEGORY = "repeat_category"
MIN_REPEAT_SHARE = 0.30
MIN_BUYERS = 5


@dataclass(frozen=True)
class ItemFilter:
    """Per-item flags in internal-index order: ``in_stock``, ``repeat_category``, ``excluded`` (bool arrays)."""

    in_stock: np.ndarray
    repeat_category: np.ndarray
    excluded: np.ndarray

    @classmethod
    def allow_all(cls, n_items: int) -> ItemFilter:
        """Every item in stock, none excluded, every category a repeat category."""
        return cls(np.ones(n_items, bool), np.ones(n_items, bool), np.zeros(n_items, bool))

    @classmethod
    def from_catalog(
        cls,
        items: IdMap,
        catalog: pl.DataFrame | None,
        *,
        repeat_items: Collection[str] | pl.Series | None = None,
        exclude: Collection[str] = (),
    ) -> ItemFilter:
        """Build the filter for the model's items.

        ``catalog``: ``item_id`` and optional ``in_stock`` (items absent from the catalog count as in stock);
        ``repeat_items``: ids whose category is a repeat category (see :func:`repeat_category_items`;
        ``None`` = every item may be repeated); ``exclude``: ids never to show. Unknown ids are ignored.
        """
        n = len(items)
        in_stock = np.ones(n, bool)
        if catalog is not None and Columns.in_stock in catalog.columns:
            out = catalog.filter(pl.col(Columns.in_stock).not_() & pl.col(Columns.in_stock).is_not_null())
            in_stock[_indices(items, out.get_column(Columns.item_id))] = False
        if repeat_items is None:
            repeat = np.ones(n, bool)
        else:
            repeat = np.zeros(n, bool)
            repeat[_indices(items, repeat_items)] = True
        excluded = np.zeros(n, bool)
        excluded[_indices(items, exclude)] = True
        return cls(in_stock, repeat, excluded)

    def blocked(self, n_items: int) -> np.ndarray:
        """Return a bool mask of items no customer may be shown; raises ``ValueError`` on a size mismatch."""
        self._check(n_items)
        return ~self.in_stock | self.excluded

    def repeat_mask(self, n_items: int) -> np.ndarray:
        """Return a bool mask of items that may be shown again to a customer who bought them."""
        self._check(n_items)
        return self.repeat_category

    def _check(self, n_items: int) -> None:
        if not (len(self.in_stock) == len(self.repeat_category) == len(self.excluded) == n_items):
            raise ValueError(f"item filter covers {len(self.in_stock)} items, the model has {n_items}")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays to save beside a model."""
        return {
            "filter_in_stock": self.in_stock,
            "filter_repeat": self.repeat_category,
            "filter_excluded": self.excluded,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ItemFilter | None:
        """Rebuild a filter saved with :meth:`to_arrays`, or ``None`` when none was saved."""
        if "filter_in_stock" not in arrays:
            return None
        return cls(
            np.asarray(arrays["filter_in_stock"], bool),
            np.asarray(arrays["filter_repeat"], bool),
            np.asarray(arrays["filter_excluded"], bool),
        )


def _indices(items: IdMap, ids: Collection[str] | pl.Series) -> np.ndarray:
    series = ids if isinstance(ids, pl.Series) else pl.Series(list(ids), dtype=pl.String)
    idx = items.to_internal(series, strict=False)
    return idx[idx >= 0]


def repeat_categories(
    transactions: pl.DataFrame,
    catalog: pl.DataFrame,
    *,
    min_repeat_share: float = MIN_REPEAT_SHARE,
    min_buyers: int = MIN_BUYERS,
) -> pl.DataFrame:
    """Return one row per category: ``category``, ``buyers``, ``repeat_share``, ``repeat_category`` (Boolean).

    ``repeat_share`` = share of the category's buyers who bought in it on >= 2 distinct orders.
    """
    lines = transactions.select(Columns.customer_id, Columns.item_id, Columns.order_id).join(
        catalog.select(Columns.item_id, Columns.category), on=Columns.item_id, how="inner"
    )
    per_buyer = lines.group_by(Columns.category, Columns.customer_id).agg(
        pl.col(Columns.order_id).n_unique().alias("orders")
    )
    return (
        per_buyer.group_by(Columns.category)
        .agg(pl.len().alias("buyers"), (pl.col("orders") >= 2).mean().alias("repeat_share"))
        .with_columns(
            ((pl.col("repeat_share") >= min_repeat_share) & (pl.col("buyers") >= min_buyers)).alias(REPEAT_CATEGORY)
        )
        .sort(Columns.category)
    )


def repeat_category_items(catalog: pl.DataFrame, categories: pl.DataFrame) -> pl.Series:
    """Return the ids of catalog items whose category is a repeat category (per :func:`repeat_categories`)."""
    repeat = categories.filter(pl.col(REPEAT_CATEGORY)).select(Columns.category)
    return catalog.join(repeat, on=Columns.category, how="semi").get_column(Columns.item_id)
