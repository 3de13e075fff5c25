"""The edge between internal indices and external ids: model results as polars frames of string ids."""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.ids import IdMap

SIMILAR_ITEM_ID = "similar_item_id"


def _long(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flatten ``[n, k]`` results to (row, rank 1-based, id, score) without the ``-1`` slots."""
    n, k = ids.shape
    row = np.repeat(np.arange(n), k)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int32), n)
    flat_ids, flat_scores = ids.ravel(), scores.ravel()
    keep = flat_ids >= 0
    return row[keep], rank[keep], flat_ids[keep], flat_scores[keep]


def _external(id_map: IdMap, indices: np.ndarray) -> pl.Series:
    # A gather on a polars Series instead of a Python list comprehension: millions of rows map quickly.
    return pl.Series(id_map.external_ids, dtype=pl.String).gather(indices)


def recommendations_frame(
    customer_idx: np.ndarray, ids: np.ndarray, scores: np.ndarray, customers: IdMap, items: IdMap
) -> pl.DataFrame:
    """Return ``customer_id``, ``item_id``, ``rank`` (Int32, 1-based), ``score`` (Float32); empty slots dropped."""
    row, rank, item, score = _long(ids, scores)
    return pl.DataFrame(
        {
            Columns.customer_id: _external(customers, np.asarray(customer_idx)[row]),
            Columns.item_id: _external(items, item),
            Columns.rank: pl.Series(rank, dtype=pl.Int32),
            Columns.score: pl.Series(score, dtype=pl.Float32),
        }
    )


def similar_items_frame(item_idx: np.ndarray, ids: np.ndarray, scores: np.ndarray, items: IdMap) -> pl.DataFrame:
    """Return ``item_id``, ``similar_item_id``, ``rank`` (Int32), ``score`` (Float32); empty slots dropped."""
    row, rank, item, score = _long(ids, scores)
    return pl.DataFrame(
        {
            Columns.item_id: _external(items, np.asarray(item_idx)[row]),
            SIMILAR_ITEM_ID: _external(items, item),
            Columns.rank: pl.Series(rank, dtype=pl.Int32),
            Columns.score: pl.Series(score, dtype=pl.Float32),
        }
    )
