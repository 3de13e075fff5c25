"""Customer × item purchase matrices (scipy CSR, float32) built from validated transactions.

Everything is vectorised: each line gets its value with a polars expression, is mapped to internal indices
with joins against the :class:`~recsys.ids.IdMap` s, and scipy's COO → CSR conversion sums the lines of each
(customer, item) pair.

Weightings (``weighting=``):

- ``binary`` — 1 for every pair that was bought at least once.
- ``count`` — how often the pair was bought: the number of purchase **lines** by default
  (``count_by="lines"``; a line is one row of the transactions frame), or the summed ``quantity``
  (``count_by="quantity"``). Lines are the default because quantities mix units (kg, litres, gallons of fuel)
  and would let one bulk purchase dominate.
- ``log1p`` — ``log(1 + count)``.
- ``tfidf`` — ``count × idf`` with the smooth idf ``log((1 + N) / (1 + df)) + 1`` (N customers, df = customers who
  bought the item), which stays positive so no bought pair becomes an explicit zero.
- ``bm25`` — Okapi BM25 on the counts with the same smooth idf:
  ``idf × count × (k1 + 1) / (count + k1 × (1 − b + b × row_len / mean_row_len))``, where ``row_len`` is
  the customer's total count (as ``implicit.nearest_neighbours.bm25_weight``, but over customers).
- ``decay`` — exponential time decay: every line contributes ``0.5 ** (age_days / half_life_days)``,
  age measured back from ``now`` (default: the newest timestamp in the frame). Requires ``half_life_days``.

``half_life_days`` may also be combined with ``count``, ``log1p``, ``tfidf`` and ``bm25``: the decayed line weights
replace the raw counts before the transformation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.exceptions import DataError
from recsys.ids import IdMap

Weighting = Literal["binary", "count", "log1p", "tfidf", "bm25", "decay"]
WEIGHTINGS: tuple[str, ...] = ("binary", "count", "log1p", "tfidf", "bm25", "decay")

_VALUE = "_value"


@dataclass(frozen=True)
class PurchaseMatrix:
    """A customers × items CSR matrix (float32) with the id maps of its rows and columns.

    ``dropped_lines`` counts transaction lines left out because their customer or item is not in the given
    id maps (or is null); ``unknown_customers`` / ``unknown_items`` count the distinct ids behind them.
    """

    matrix: sp.csr_matrix
    customers: IdMap
    items: IdMap
    weighting: str = "count"
    dropped_lines: int = 0
    unknown_customers: int = 0
    unknown_items: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(number of customers, number of items)."""
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        """Number of stored (customer, item) pairs."""
        return int(self.matrix.nnz)


def build_matrix(
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    weighting: Weighting | str = "count",
    customers: IdMap | None = None,
    items: IdMap | None = None,
    half_life_days: float | None = None,
    now: datetime | None = None,
    count_by: Literal["lines", "quantity"] = "lines",
    k1: float = 1.2,
    b: float = 0.75,
) -> PurchaseMatrix:
    """Return the weighted purchase matrix of ``transactions`` (see the module docstring for weightings).

    ``customers`` / ``items``: fix the rows / columns (e.g. the train maps when building a test matrix);
    lines whose ids are not in them are dropped and counted. When omitted, the maps are built from the data
    (sorted distinct ids, so the same data always gives the same matrix).

    Raises ``ValueError`` for an unknown weighting or bad parameters, ``DataError`` when a needed column is missing.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    if weighting == "decay" and half_life_days is None:
        raise ValueError("weighting 'decay' needs half_life_days (e.g. half_life_days=30)")
    if half_life_days is not None and not half_life_days > 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    if count_by not in ("lines", "quantity"):
        raise ValueError(f"count_by must be 'lines' or 'quantity', got {count_by!r}")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")

    frame = transactions.lazy() if isinstance(transactions, pl.DataFrame) else transactions
    needed = [Columns.customer_id, Columns.item_id]
    if count_by == "quantity" and weighting != "binary":
        needed.append(Columns.quantity)
    if half_life_days is not None and weighting != "binary":
        needed.append(Columns.timestamp)
    present = frame.collect_schema().names()
    missing = [c for c in needed if c not in present]
    if missing:
        raise DataError(f"transactions frame is missing column(s) {missing}; expected the standard schema ({needed})")

    lines = _line_values(frame, weighting, half_life_days, now, count_by).collect()

    if customers is None:
        customers = IdMap.from_values(lines.get_column(Columns.customer_id))
    if items is None:
        items = IdMap.from_values(lines.get_column(Columns.item_id))

    mapped = customers.to_internal_frame(lines, Columns.customer_id, Columns.customer_idx)
    mapped = items.to_internal_frame(mapped, Columns.item_id, Columns.item_idx)
    # Inner joins drop lines with unknown or null ids; count them rather than lose them silently.
    dropped_lines = lines.height - mapped.height
    unknown_customers = unknown_items = 0
    if dropped_lines:
        unknown_customers = _count_unknown(lines, Columns.customer_id, customers)
        unknown_items = _count_unknown(lines, Columns.item_id, items)

    rows = mapped.get_column(Columns.customer_idx).to_numpy()
    cols = mapped.get_column(Columns.item_idx).to_numpy()
    values = mapped.get_column(_VALUE).to_numpy().astype(np.float64, copy=False)
    shape = (len(customers), len(items))
    # COO → CSR sums the lines of each (customer, item) pair: no group_by over the (wide) string ids needed.
    matrix = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float64)
    matrix.sum_duplicates()
    matrix = _transform(matrix, weighting, k1=k1, b=b)
    matrix = matrix.astype(np.float32)
    matrix.sort_indices()
    return PurchaseMatrix(
        matrix=matrix,
        customers=customers,
        items=items,
        weighting=str(weighting),
        dropped_lines=dropped_lines,
        unknown_customers=unknown_customers,
        unknown_items=unknown_items,
    )


def _line_values(
    frame: pl.LazyFrame,
    weighting: str,
    half_life_days: float | None,
    now: datetime | None,
    count_by: str,
) -> pl.LazyFrame:
    """One row per input line (null ids included): customer id, item id and the line's raw value (1, quantity or
    decayed)."""
    ids = [pl.col(Columns.customer_id).cast(pl.String), pl.col(Columns.item_id).cast(pl.String)]
    line_value: pl.Expr = pl.col(Columns.quantity).cast(pl.Float64) if count_by == "quantity" else pl.lit(1.0)
    if weighting == "binary":
        line_value = pl.lit(1.0)
    elif half_life_days is not None:
        ts = pl.col(Columns.timestamp)
        reference = pl.lit(now) if now is not None else ts.max()
        # Lines after ``now`` count as age 0 rather than growing above 1.
        age_days = ((reference - ts).dt.total_microseconds().cast(pl.Float64) / 86_400e6).clip(lower_bound=0.0)
        line_value = line_value * (0.5 ** (age_days / half_life_days))
    return frame.select(*ids, line_value.alias(_VALUE))


def _count_unknown(pairs: pl.DataFrame, column: str, id_map: IdMap) -> int:
    """Distinct values of ``column`` that are not in ``id_map``."""
    known = pl.DataFrame({column: pl.Series(id_map.external_ids, dtype=pl.String)})
    return pairs.select(column).unique().join(known, on=column, how="anti").height


def _smooth_idf(matrix: sp.csr_matrix) -> np.ndarray:
    """``log((1 + N) / (1 + df)) + 1`` per column; always > 0."""
    n_rows = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
    return np.log((1.0 + n_rows) / (1.0 + df)) + 1.0


def _transform(matrix: sp.csr_matrix, weighting: str, *, k1: float, b: float) -> sp.csr_matrix:
    """Apply the weighting to a CSR of raw values in place and return it."""
    if weighting == "binary":
        matrix.data[:] = 1.0
    elif weighting == "log1p":
        np.log1p(matrix.data, out=matrix.data)
    elif weighting == "tfidf":
        matrix.data *= _smooth_idf(matrix)[matrix.indices]
    elif weighting == "bm25":
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise ValueError(f"bm25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        idf = _smooth_idf(matrix)
        row_len = np.asarray(matrix.sum(axis=1)).ravel()
        mean_len = row_len.mean() if row_len.size and row_len.mean() > 0 else 1.0
        norm = (1.0 - b) + b * row_len / mean_len
        row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        data = matrix.data
        matrix.data = idf[matrix.indices] * data * (k1 + 1.0) / (data + k1 * norm[row_of])
    # "count" and "decay" keep the aggregated values.
    return matrix
