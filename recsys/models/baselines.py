"""Baselines that are hard to beat on retail data: popularity, trending, popular-in-category, buy-again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.models.artifacts import csr_arrays, csr_from_arrays
from recsys.models.base import Recommender, dense_rows

if TYPE_CHECKING:
    import polars as pl


class _ListModel(Recommender):
    """A model whose ranking is one global list (``item_scores_``) for everyone."""

    personalized: ClassVar[bool] = False

    def _score(self, batch: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (batch.size, self.item_scores_.size)).copy()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores": self.item_scores_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_scores_ = np.asarray(arrays["item_scores"], np.float32)


class PopularityRecommender(_ListModel):
    """Global popularity: the number of distinct customers who bought the item."""

    name: ClassVar[str] = "popularity"
    can_explore: ClassVar[bool] = True

    def __init__(self) -> None:
        pass

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        self.item_scores_ = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float32)


class TrendingRecommender(_ListModel):
    """Time-decayed popularity: the sum of the recency-decayed purchase weights per item.

    Fit with ``recent=`` a decay matrix of a short half-life (``half_life_days`` records the one used);
    without it, the raw counts are summed (plain line popularity).
    """

    name: ClassVar[str] = "trending"
    can_explore: ClassVar[bool] = True

    def __init__(self, half_life_days: float = 14.0) -> None:
        self.half_life_days = half_life_days

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        source = recent if recent is not None else counts
        self.item_scores_ = np.asarray(source.sum(axis=0), dtype=np.float32).ravel()


class PopularInCategoryRecommender(Recommender):
    """The customer's ``top_categories`` most-bought categories, each category's popular items first.

    Item categories come from ``item_categories`` (int code per item, set before ``fit``; ``-1`` = none);
    without them every item is in one category and this is popularity. Score = the customer's share of
    purchases in the category × the item's popularity relative to its category's most popular item.
    """

    name: ClassVar[str] = "popular_in_category"
    item_categories: np.ndarray | None = None

    def __init__(self, top_categories: int = 3) -> None:
        self.top_categories = top_categories

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        n_items = counts.shape[1]
        codes = (
            np.zeros(n_items, np.int64) if self.item_categories is None else np.asarray(self.item_categories, np.int64)
        )
        if codes.size != n_items:
            raise ValueError(f"item_categories has {codes.size} entries, the matrix has {n_items} items")
        codes = np.where(codes < 0, codes.max(initial=0) + 1, codes)  # uncategorised items share one bucket
        popularity = np.bincount(counts.indices, minlength=n_items).astype(np.float64)
        best_in_category = np.zeros(codes.max(initial=0) + 1)
        np.maximum.at(best_in_category, codes, popularity)
        self.categories_ = codes.astype(np.int32)
        self.relative_popularity_ = (popularity / np.maximum(best_in_category[codes], 1.0)).astype(np.float32)
        onehot = sp.csr_matrix(
            (np.ones(n_items, np.float32), (np.arange(n_items), codes)), shape=(n_items, codes.max(initial=0) + 1)
        )
        affinity = (counts @ onehot).tocsr()
        totals = np.asarray(affinity.sum(axis=1)).ravel()
        self.affinity_ = sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1e-9)) @ affinity, dtype=np.float32)

    def _score(self, batch: np.ndarray) -> np.ndarray:
        affinity = self.affinity_[batch].toarray()
        if affinity.shape[1] > self.top_categories:
            cutoff = -np.partition(-affinity, self.top_categories - 1, axis=1)[
                :, self.top_categories - 1 : self.top_categories
            ]
            affinity[affinity < cutoff] = 0.0
        scores = affinity[:, self.categories_] * self.relative_popularity_[None, :]
        scores[scores <= 0] = -np.inf
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "categories": self.categories_,
            "relative_popularity": self.relative_popularity_,
            **csr_arrays("affinity", self.affinity_),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.categories_ = np.asarray(arrays["categories"], np.int32)
        self.relative_popularity_ = np.asarray(arrays["relative_popularity"], np.float32)
        self.affinity_ = csr_from_arrays("affinity", arrays)


class BuyAgainRecommender(Recommender):
    """Personal buy-again: the customer's own purchase frequency, recency-decayed (P-TopFreq with decay).

    Fit with ``recent=`` a decay matrix (``half_life_days`` records its half-life) to weight recent purchases
    up; without it, plain purchase counts. Recommends only items the customer bought before.
    """

    name: ClassVar[str] = "buy_again"

    def __init__(self, half_life_days: float = 120.0) -> None:
        self.half_life_days = half_life_days

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        scores = (recent if recent is not None else counts).copy()
        # A tiny count term breaks ties between equally decayed items in favour of the more frequent one.
        scores = scores + counts.multiply(1e-6).tocsr()
        self.scores_ = sp.csr_matrix(scores, dtype=np.float32)

    def _score(self, batch: np.ndarray) -> np.ndarray:
        return dense_rows(self.scores_, batch)

    def _arrays(self) -> dict[str, np.ndarray]:
        return csr_arrays("scores", self.scores_)

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.scores_ = csr_from_arrays("scores", arrays)


class UserKNNRecommender(Recommender):
    """What similar customers buy: the average recency-weighted basket of the ``neighbours`` most similar customers.

    The neighbour term of TIFU-KNN (Hu et al., SIGIR 2020): customers are rows of the recency-decayed counts
    (``recent=``; raw counts without it), L2-normalised, compared by cosine. Scoring compares a batch with every
    customer, so it suits up to about a million customers; beyond that, shard by customer range.
    """

    name: ClassVar[str] = "user_knn"
    can_explore: ClassVar[bool] = True
    learns_from_feedback: ClassVar[bool] = True  # views and clicks enter the customer vectors (who is alike, and
    # what the neighbours' baskets hold)

    def __init__(self, neighbours: int = 50, half_life_days: float = 120.0) -> None:
        self.neighbours = neighbours
        self.half_life_days = half_life_days

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        rows = (recent if recent is not None else counts).astype(np.float32)
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
        self.vectors_ = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ rows, dtype=np.float32)

    def _score(self, batch: np.ndarray) -> np.ndarray:
        scores = self.sparse_scores(batch).toarray()
        scores[scores <= 0] = -np.inf
        return scores

    def sparse_scores(self, batch: np.ndarray) -> sp.csr_matrix:
        """Scores as a CSR ``[len(batch), n_items]``: only items some neighbour bought are stored (all > 0)."""
        sims = (self.vectors_[batch] @ self.vectors_.T).toarray()
        sims[np.arange(batch.size), batch] = 0.0
        k = min(self.neighbours, sims.shape[1] - 1)
        if k <= 0:
            return sp.csr_matrix((batch.size, self.n_items), dtype=np.float32)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.take_along_axis(sims, top, axis=1)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        neighbour_rows = sp.csr_matrix(
            (weights.ravel(), top.ravel(), np.arange(0, batch.size * k + 1, k)), shape=(batch.size, sims.shape[1])
        )
        scores = sp.csr_matrix(neighbour_rows @ self.vectors_, dtype=np.float32)
        scores.data[scores.data < 0] = 0.0
        scores.eliminate_zeros()
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return csr_arrays("vectors", self.vectors_)

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.vectors_ = csr_from_arrays("vectors", arrays)
