"""Fit a model on a split's train part, recommend for every scored customer, and compute every metric.

A *model factory* is any callable ``factory(data: EvalData) -> Recommender``: it builds and fits the model
(the runner times the call as ``fit_seconds``). A factory receives the whole :class:`EvalData` so that models
needing more than a matrix (time-decayed baselines want timestamps, popular-in-category wants a catalog) can
take it, while the runner itself only relies on ``recommend``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.columns import Columns
from recsys.evaluation.metrics import DEFAULT_KS, evaluate_top_k, item_buyers
from recsys.matrix import PurchaseMatrix, build_matrix
from recsys.splits import Split


@runtime_checkable
class Recommender(Protocol):
    """What evaluation needs from a fitted model (``recsys.models`` implement more)."""

    def recommend(self, customer_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(item_idx, scores)``, both ``(len(customer_idx), k)``, best first, ``-1`` padding a short row.

        Called with the model's default policy for items the customer already bought (buy-again keeps them,
        explore models drop them), so repeat and explore metrics show what the model would serve.
        """
        ...


@dataclass(frozen=True)
class EvalData:
    """One split, ready to score: the train matrix, its lines, and the binary ground truth on the same ids.

    ``customers`` are the internal indices (rows of ``train.matrix``) of customers with at least one test item;
    ``now`` is the reference time for time-decayed models (the split's cutoff, else the newest train line);
    ``recent`` is the train matrix with ``decay`` weighting at ``now`` (the ``recent=`` input of ``Recommender.fit``);
    :meth:`decayed` gives it for another half-life. ``basket_sizes``: per train customer, the distinct items of their
    test part *including* items unseen in training (0 for customers without one), for the next-basket metrics.
    """

    train: PurchaseMatrix
    transactions: pl.DataFrame
    truth: sp.csr_matrix
    customers: np.ndarray
    now: datetime
    stats: dict[str, Any] = field(default_factory=dict)
    catalog: pl.DataFrame | None = None
    recent_half_life_days: float = 30.0
    basket_sizes: np.ndarray | None = None
    _decayed: dict[float, PurchaseMatrix] = field(default_factory=dict, repr=False, compare=False)

    def decayed(self, half_life_days: float) -> PurchaseMatrix:
        """Return the train lines as a ``decay`` matrix with this half-life at ``now`` (same id maps; cached)."""
        key = float(half_life_days)
        if key not in self._decayed:
            self._decayed[key] = build_matrix(
                self.transactions,
                weighting="decay",
                half_life_days=key,
                now=self.now,
                customers=self.train.customers,
                items=self.train.items,
            )
        return self._decayed[key]

    @property
    def recent(self) -> PurchaseMatrix:
        """The ``decay`` train matrix at the default half-life (``recent_half_life_days``)."""
        return self.decayed(self.recent_half_life_days)


ModelFactory = Callable[[EvalData], Recommender]


def prepare(split: Split, *, catalog: pl.DataFrame | None = None, recent_half_life_days: float = 30.0) -> EvalData:
    """Return the :class:`EvalData` of ``split``: ``count`` and ``decay`` train matrices and a binary truth on
    their ids."""
    train = build_matrix(split.train, weighting="count")
    cutoff = split.stats.get("cutoff")
    now = datetime.fromisoformat(str(cutoff)) if cutoff else split.train.select(pl.col(Columns.timestamp).max()).item()
    truth = build_matrix(split.test, weighting="binary", customers=train.customers, items=train.items)
    customers = np.flatnonzero(np.diff(truth.matrix.indptr)).astype(np.int32)
    sizes = np.diff(truth.matrix.indptr).astype(np.int64)
    if split.test_sizes is not None:
        given = split.test_sizes.with_columns(pl.col(Columns.customer_id).cast(pl.String))
        known = train.customers.to_internal_frame(given, Columns.customer_id, "_row")
        rows = known.get_column("_row").to_numpy()
        # never below the scorable items (a caller's sizes frame could be from another filter of the same test)
        sizes[rows] = np.maximum(sizes[rows], known.get_column("test_items").to_numpy())
    stats = {
        **split.stats,
        "customers": len(train.customers),
        "items": len(train.items),
        "train_pairs": train.nnz,
        "scored_customers": int(customers.size),
        "test_pairs": int(truth.nnz),
    }
    return EvalData(
        train=train,
        transactions=split.train,
        truth=truth.matrix,
        customers=customers,
        now=now,
        stats=stats,
        catalog=catalog,
        recent_half_life_days=recent_half_life_days,
        basket_sizes=sizes,
    )


def recommend_all(
    model: Recommender,
    customers: np.ndarray,
    k: int,
    batch_size: int = 4096,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Return the ``(len(customers), k)`` int array of top-k item indices, asking the model in batches."""
    out = np.full((customers.size, k), -1, dtype=np.int64)
    for start in range(0, customers.size, batch_size):
        batch = customers[start : start + batch_size]
        ids, _ = model.recommend(batch, k)
        ids = np.asarray(ids)
        if ids.ndim == 1:  # a single-customer answer from a model that flattens
            ids = ids[None, :]
        width = min(k, ids.shape[1])
        out[start : start + batch.size, :width] = ids[:, :width]
        if on_batch is not None:
            on_batch(batch.size)
    return out


def evaluate_model(
    factory: ModelFactory,
    data: EvalData,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 4096,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Fit with ``factory(data)`` (after ``factory.prepare_inputs(data)`` if it has one), recommend ``max(ks)``
    items for every scored customer, return all metrics.

    Keys are lower-case ``name@k`` (see :mod:`recsys.evaluation.metrics`) plus ``fit_seconds`` and
    ``recommend_seconds`` (wall time of the fit and of all ``recommend`` calls).
    """
    # Input preparation a factory declares (e.g. a decay matrix of its half-life) is not model fitting: untimed.
    prepare_inputs = getattr(factory, "prepare_inputs", None)
    if prepare_inputs is not None:
        prepare_inputs(data)
    started = time.perf_counter()
    model = factory(data)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    top_k = recommend_all(model, data.customers, max(ks), batch_size=batch_size, on_batch=on_batch)
    recommend_seconds = time.perf_counter() - started
    rows = data.customers
    metrics = evaluate_top_k(
        top_k,
        data.truth[rows],
        data.train.matrix[rows],
        ks,
        item_popularity=item_buyers(data.train.matrix),
        n_train_customers=data.train.matrix.shape[0],
        basket_sizes=data.basket_sizes[rows] if data.basket_sizes is not None else None,
    )
    metrics["fit_seconds"] = fit_seconds
    metrics["recommend_seconds"] = recommend_seconds
    return metrics
