"""Collaborative models wrapping ``implicit`` 0.7: ALS, BPR and item-item kNN (cosine, BM25).

The CPU or GPU implementation is chosen in one place, :func:`make_implicit`. Learned factors are copied
back to numpy after fitting so that scoring, saving and fold-in are the same on both.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.utils import ParameterWarning

from recsys.models.artifacts import csr_arrays, csr_from_arrays
from recsys.models.base import Recommender, top_k
from recsys.models.factor_topk import NormOrder, Unbought, unbought_top_k

if TYPE_CHECKING:
    import polars as pl


def make_implicit(kind: str, *, use_gpu: bool | None = None, **params: Any) -> Any:
    """Return an unfitted ``implicit`` model of ``kind`` (``als``, ``bpr``, ``cosine``, ``bm25``).

    GPU when ``implicit.gpu.HAS_CUDA`` (or ``use_gpu=True``), CPU otherwise; kNN models are CPU only.
    Raises ``ValueError`` for an unknown kind.
    """
    import implicit.gpu

    gpu = implicit.gpu.HAS_CUDA if use_gpu is None else use_gpu
    if kind == "als":
        from implicit.als import AlternatingLeastSquares

        return AlternatingLeastSquares(use_gpu=gpu, **params)
    if kind == "bpr":
        from implicit.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(use_gpu=gpu, **params)
    if kind == "cosine":
        from implicit.nearest_neighbours import CosineRecommender

        return CosineRecommender(**params)
    if kind == "bm25":
        from implicit.nearest_neighbours import BM25Recommender

        return BM25Recommender(**params)
    raise ValueError(f"unknown implicit model kind {kind!r}; choose als, bpr, cosine or bm25")


def _single_threaded_blas() -> Any:
    """Context manager limiting BLAS to one thread, as ``implicit`` recommends (its own threads do the work)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


def bm25_rows(
    counts: sp.csr_matrix, k1: float, b: float, idf: np.ndarray | None = None, mean_len: float | None = None
) -> tuple[sp.csr_matrix, np.ndarray, float]:
    """BM25-weight customer rows of raw counts; return ``(weighted, idf, mean_len)``.

    ``idf``/``mean_len`` default to the statistics of ``counts``; pass the training ones to weight a new
    customer (fold-in) exactly as during training.
    """
    if idf is None:
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
        idf = np.log(counts.shape[0] / (1.0 + df)).clip(min=0.0) + 1e-3
    row_len = np.asarray(counts.sum(axis=1)).ravel()
    if mean_len is None:
        mean_len = float(row_len.mean()) if row_len.size and row_len.mean() > 0 else 1.0
    norm = (1.0 - b) + b * row_len / mean_len
    weighted = counts.astype(np.float64)
    row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    weighted.data = weighted.data * (k1 + 1.0) / (k1 * norm[row_of] + weighted.data) * idf[weighted.indices]
    return weighted.astype(np.float32).tocsr(), idf, mean_len


class _FactorModel(Recommender):
    """Shared scoring of matrix-factorisation models: ``user_factors_ @ item_factors_.T``."""

    can_explore: ClassVar[bool] = True
    learns_from_feedback: ClassVar[bool] = True  # views and clicks shape both factor matrices

    supports_similar_items: ClassVar[bool] = True
    kind: ClassVar[str] = ""

    def _score(self, batch: np.ndarray) -> np.ndarray:
        return self.user_factors_[batch] @ self.item_factors_.T

    def top_unbought(self, batch: np.ndarray, k: int, bought: sp.csr_matrix, also: np.ndarray) -> Unbought | None:
        """The ``k`` best items outside ``bought`` of these customers without scoring every item (``factor_topk``);
        ``None`` where that does not apply (a small catalog)."""
        if not hasattr(self, "norm_order_"):  # computed once, dropped by the next fit
            self.norm_order_ = NormOrder.of(self.item_factors_)
        return unbought_top_k(self.user_factors_[batch], self.norm_order_, bought, k, also)

    def _item_scores(self, batch: np.ndarray, columns: np.ndarray) -> np.ndarray:
        if not hasattr(self, "unit_factors_"):  # computed once, dropped by the next fit
            norms = np.linalg.norm(self.item_factors_, axis=1)
            norms[norms == 0] = 1.0
            self.unit_factors_ = (self.item_factors_ / norms[:, None]).astype(np.float32)
        return self.unit_factors_[batch] @ self.unit_factors_[columns].T

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.user_factors_ = np.asarray(arrays["user_factors"], np.float32)
        self.item_factors_ = np.asarray(arrays["item_factors"], np.float32)

    def _fit_implicit(self, weighted: sp.csr_matrix, **params: Any) -> None:
        with _single_threaded_blas():
            model = make_implicit(self.kind, **params)
            model.fit(weighted, show_progress=False)
        if type(model).__module__.startswith("implicit.gpu"):  # factors live on the device: bring them home
            model = model.to_cpu()
        self.user_factors_ = np.asarray(model.user_factors, np.float32)
        self.item_factors_ = np.asarray(model.item_factors, np.float32)


class ALSRecommender(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren, Volinsky) on BM25-weighted counts; supports fold-in of new baskets."""

    name: ClassVar[str] = "als"
    kind: ClassVar[str] = "als"
    supports_fold_in: ClassVar[bool] = True

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 10,
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        random_state: int = 42,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.random_state = random_state

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        weighted, self.idf_, self.mean_len_ = bm25_rows(counts, self.bm25_k1, self.bm25_b)
        self._fit_implicit(
            weighted,
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        return {**super()._arrays(), "idf": self.idf_, "mean_len": np.asarray([self.mean_len_])}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._restore(arrays)
        self.idf_ = np.asarray(arrays["idf"], np.float64)
        self.mean_len_ = float(arrays["mean_len"][0])

    def fold_in(self, item_idx: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """Return the user vector (float32[factors]) that ALS computes for a customer with these purchases."""
        from implicit.cpu.als import AlternatingLeastSquares

        self._check_fitted()
        item_idx = np.asarray(item_idx, dtype=np.int32)
        values = np.ones(item_idx.size, np.float32) if counts is None else np.asarray(counts, np.float32)
        row = sp.csr_matrix((values, (np.zeros(item_idx.size, np.int32), item_idx)), shape=(1, self.n_items))
        row.sum_duplicates()
        weighted, _, _ = bm25_rows(row, self.bm25_k1, self.bm25_b, idf=self.idf_, mean_len=self.mean_len_)
        with _single_threaded_blas():
            solver = AlternatingLeastSquares(
                factors=self.item_factors_.shape[1], regularization=self.regularization, alpha=self.alpha
            )
            solver.item_factors = self.item_factors_
            solver.user_factors = np.zeros((1, self.item_factors_.shape[1]), np.float32)
            return np.asarray(solver.recalculate_user(0, weighted), np.float32)

    def recommend_from_items(
        self, item_ids: Sequence[str], k: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]]:
        """Rank items for an anonymous basket of external ``item_ids`` (unknown ids ignored).

        Returns ``[(item_id, score), …]`` best first, at most ``k``. Out-of-stock and ``exclude`` ids are never
        returned, nor the given items themselves unless the model's item filter marks their category as repeat.
        """
        self._check_fitted()
        known = self.items_.to_internal(list(item_ids), strict=False)
        known = known[known >= 0]
        if known.size == 0:
            return []  # nothing the model knows: no basis for a personal ranking (callers fall back)
        scores = (self.item_factors_ @ self.fold_in(known))[None, :].astype(np.float32)
        blocked = (
            self.item_filter.blocked(self.n_items) if self.item_filter is not None else np.zeros(self.n_items, bool)
        )
        scores[:, blocked] = -np.inf
        # The basket's own items come back only when the filter says their category is bought again and again.
        repeatable = (
            self.item_filter.repeat_mask(self.n_items) if self.item_filter is not None else np.zeros(self.n_items, bool)
        )
        scores[0, known[~repeatable[known]]] = -np.inf
        excluded = self.items_.to_internal(list(exclude), strict=False)
        scores[0, excluded[excluded >= 0]] = -np.inf
        ids, best = top_k(scores, k)
        keep = ids[0] >= 0
        return list(zip(self.items_.to_external(ids[0][keep]), best[0][keep].astype(float).tolist(), strict=True))


class BPRRecommender(_FactorModel):
    """Bayesian Personalised Ranking (pairwise, sampled negatives) on binary purchases."""

    name: ClassVar[str] = "bpr"
    kind: ClassVar[str] = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 42,
        num_threads: int = 0,
    ) -> None:
        """``num_threads=1`` makes fits reproducible (parallel SGD updates race); 0 = all cores."""
        self.num_threads = num_threads
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        binary = counts.copy()
        binary.data[:] = 1.0
        self._fit_implicit(
            binary,
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
        )


class _ItemKNN(Recommender):
    """Item-item nearest neighbours: ``implicit`` builds the top-``neighbours`` similarity per item.

    With views and clicks (``fit(feedback=…)``) they shape the similarity; a customer is still scored from what they
    bought (``user_items_``).
    """

    can_explore: ClassVar[bool] = True
    learns_from_feedback: ClassVar[bool] = True

    supports_similar_items: ClassVar[bool] = True
    neighbours: int

    def _implicit_model(self) -> Any:
        raise NotImplementedError

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        model = self._implicit_model()
        with _single_threaded_blas(), warnings.catch_warnings():
            # implicit's BM25Recommender hands its own COO weighting to its CSR check; nothing to fix on our side.
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(counts, show_progress=False)
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float32)

    def _score(self, batch: np.ndarray) -> np.ndarray:
        scores = (self.user_items_[batch] @ self.similarity_).toarray()
        # Items no neighbour points to are not candidates (a zero score is "no evidence", not a weak match).
        scores[scores <= 0] = -np.inf
        return scores

    def _item_scores(self, batch: np.ndarray, columns: np.ndarray) -> np.ndarray:
        scores = self.similarity_[batch][:, columns].toarray()
        scores[scores <= 0] = -np.inf
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return csr_arrays("similarity", self.similarity_)

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.similarity_ = csr_from_arrays("similarity", arrays)


class CosineKNNRecommender(_ItemKNN):
    """Item-item kNN with cosine similarity of the items' purchase-count columns."""

    name: ClassVar[str] = "item_knn_cosine"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def _implicit_model(self) -> Any:
        return make_implicit("cosine", K=self.neighbours)


class BM25KNNRecommender(_ItemKNN):
    """Item-item kNN on BM25-weighted counts (down-weights customers who buy everything)."""

    name: ClassVar[str] = "item_knn_bm25"

    def __init__(self, neighbours: int = 100, bm25_k1: float = 1.2, bm25_b: float = 0.75) -> None:
        self.neighbours = neighbours
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    def _implicit_model(self) -> Any:
        return make_implicit("bm25", K=self.neighbours, K1=self.bm25_k1, B=self.bm25_b)
