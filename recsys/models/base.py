"""The one interface every recommender implements: batch-first, internal indices inside.

A model is fitted on a customers × items matrix of **raw purchase counts** (``build_matrix(...,
weighting="count")``), optionally with ``recent=`` the same pairs weighted by recency
(``weighting="decay"``); each model applies its own transformation (BM25, normalisation, decay) so that
every model can be fitted from the same two matrices and its parameters say everything it did.

``recommend`` returns ``(ids, scores)`` arrays of shape ``[n, k]`` (int32 item indices, float32 scores),
best first; a slot that no item could fill (the customer's candidates ran out) holds id ``-1`` and score
``-inf``. Items that must never be shown are removed here, from an :class:`~recsys.models.filters.ItemFilter`.
"""

from __future__ import annotations

import inspect
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recsys.clock import utcnow
from recsys.exceptions import ArtifactError
from recsys.ids import IdMap
from recsys.matrix import PurchaseMatrix
from recsys.models import artifacts
from recsys.models.filters import ItemFilter
from recsys.models.parallel import map_threads
from recsys.models.topk import top_k

if TYPE_CHECKING:
    import polars as pl

    from recsys.implicit_feedback import Feedback

BATCH_SIZE = 256  # customers scored at once: 256 × 100k items × 4 bytes = 100 MB of dense scores


class NotFittedError(RuntimeError):
    """``recommend``/``save`` was called before ``fit``."""


def as_csr(matrix: PurchaseMatrix | sp.spmatrix | sp.sparray) -> tuple[sp.csr_matrix, IdMap, IdMap]:
    """Return ``(csr float32, customers IdMap, items IdMap)`` for a PurchaseMatrix or a scipy matrix.

    A non-CSR sparse matrix is converted with a warning (as ``implicit`` does); a bare matrix gets
    id maps ``"0", "1", …``. Raises ``TypeError`` for anything that is not sparse.
    """
    if isinstance(matrix, PurchaseMatrix):
        csr, customers, items = matrix.matrix, matrix.customers, matrix.items
    elif sp.issparse(matrix):
        csr = matrix
        customers = IdMap(tuple(str(i) for i in range(matrix.shape[0])))
        items = IdMap(tuple(str(i) for i in range(matrix.shape[1])))
    else:
        raise TypeError(f"fit needs a PurchaseMatrix or a scipy sparse matrix, got {type(matrix).__name__}")
    if not isinstance(csr, sp.csr_matrix):
        warnings.warn(f"converting {type(csr).__name__} to CSR; pass a csr_matrix to avoid the copy", stacklevel=3)
        csr = sp.csr_matrix(csr)
    csr = csr.astype(np.float32)
    csr.sort_indices()
    return csr, customers, items


def dense_rows(matrix: sp.csr_matrix, batch: np.ndarray) -> np.ndarray:
    """Return rows ``batch`` of a sparse score matrix as a dense float32 array, ``-inf`` where nothing is stored.

    The ``_score`` of a model whose scores are a customers × items CSR (buy-again, the learned hybrid).
    """
    rows = matrix[batch]
    out = np.full(rows.shape, -np.inf, np.float32)
    out[np.repeat(np.arange(batch.size), np.diff(rows.indptr)), rows.indices] = rows.data
    return out


class Recommender(ABC):
    """Base of every model: ``fit`` → ``recommend`` / ``similar_items`` → ``save`` / ``load``.

    Subclasses implement ``_fit`` (learned state in attributes ending in ``_``), ``_score`` (dense scores of a
    batch of customers, ``-inf`` for items that are not candidates) and the array (de)serialisation.
    """

    name: ClassVar[str] = "base"
    supports_fold_in: ClassVar[bool] = False
    supports_similar_items: ClassVar[bool] = False
    personalized: ClassVar[bool] = True
    # Can the linear hybrid use this model for its explore list (items new to the customer)?
    can_explore: ClassVar[bool] = False
    # Does ``fit`` need the purchase lines (``transactions=``), not only the matrix? (The learned hybrid does.)
    needs_transactions: ClassVar[bool] = False
    # Without an ItemFilter, does ``recommend`` drop items the customer already bought? Off for every model:
    # in retail the next basket is mostly repeats, and evaluation scores repeat purchases.
    excludes_bought_by_default: ClassVar[bool] = False
    # Does ``fit(feedback=…)`` add views and clicks to what this model learns from? Only models that learn which
    # items go together; never buy-again, popularity or anything read as "the customer bought it".
    learns_from_feedback: ClassVar[bool] = False

    item_filter: ItemFilter | None = None

    # ---- parameters -------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (JSON-able), as saved in the manifest."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    # ---- fitting ----------------------------------------------------------------------------------
    def fit(
        self,
        matrix: PurchaseMatrix | sp.spmatrix,
        *,
        recent: PurchaseMatrix | sp.spmatrix | None = None,
        transactions: pl.DataFrame | None = None,
        feedback: Feedback | None = None,
    ) -> Self:
        """Fit on raw purchase counts (customers × items); ``recent``: the same pairs recency-decayed.

        ``transactions``: the purchase lines behind ``matrix`` (external ids as in its id maps), used only by
        models with ``needs_transactions`` (others ignore it). ``feedback``: weighted views and clicks on the same id
        maps (:mod:`recsys.implicit_feedback`), learned from only by models with ``learns_from_feedback``; the
        bought items (``user_items_``, the "already bought" filter) stay the purchases. Fitting again discards
        everything learned before. Returns ``self``; raises ``ValueError`` when ``recent`` or ``feedback`` does not
        have the shape of ``matrix`` or when a model that needs the lines gets none.
        """
        if self.needs_transactions and transactions is None:
            raise ValueError(
                f"{self.name} learns from basket history: call fit(matrix, transactions=<the purchase lines>)"
            )
        csr, customers, items = as_csr(matrix)
        recent_csr = None
        if recent is not None:
            recent_csr = as_csr(recent)[0]
            if recent_csr.shape != csr.shape:
                raise ValueError(
                    f"recent has shape {recent_csr.shape}, matrix has {csr.shape}; build both with the same id maps"
                )
        for key in [key for key in vars(self) if key.endswith("_")]:
            delattr(self, key)
        self.user_items_ = csr
        self.customers_ = customers
        self.items_ = items
        self.fingerprint_ = artifacts.fingerprint(csr, customers, items)
        self.trained_at_ = utcnow().isoformat(timespec="seconds")
        if feedback is None:
            self._fit(csr, recent_csr, transactions)  # the lines are an argument, never kept on the model
        else:
            feedback.check_shape(csr.shape)  # for every model alike (the sum only where a model learns from it)
            self.fingerprint_ = artifacts.fingerprint(feedback.counts, customers, items, seed=self.fingerprint_)
            self._fit_feedback(csr, recent_csr, transactions, feedback)
        return self

    def _fit_feedback(
        self,
        counts: sp.csr_matrix,
        recent: sp.csr_matrix | None,
        transactions: pl.DataFrame | None,
        feedback: Feedback,
    ) -> None:
        """Fit with views and clicks: on purchases + feedback when the model ``learns_from_feedback``, else on
        the purchases alone. A model made of parts (the hybrid) overrides this to hand the feedback to its parts."""
        if self.learns_from_feedback:
            counts, recent = feedback.added_to(counts, recent)
        self._fit(counts, recent, transactions)

    @abstractmethod
    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        """Learn from the counts, the optional recency-weighted counts and the purchase lines behind them.

        ``transactions`` is not ``None`` whenever the model ``needs_transactions`` (``fit`` checks it); a fitted
        model keeps only what it learned from it.
        """

    @property
    def n_items(self) -> int:
        """Number of items the model was fitted on."""
        self._check_fitted()
        return int(self.user_items_.shape[1])

    @property
    def n_customers(self) -> int:
        """Number of customers the model was fitted on."""
        self._check_fitted()
        return int(self.user_items_.shape[0])

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(matrix) first")

    # ---- recommending -----------------------------------------------------------------------------
    def recommend(
        self,
        customer_idx: np.ndarray | list[int],
        k: int,
        *,
        item_filter: ItemFilter | None = None,
        filter_items: np.ndarray | None = None,
        exclude_bought: bool | None = None,
        batch_size: int = BATCH_SIZE,
        threads: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the top ``k`` items for each customer index as ``(ids int32[n, k], scores float32[n, k])``.

        ``item_filter`` (default: the model's ``item_filter``) removes out-of-stock and excluded items and,
        with ``exclude_bought=None``, bought items whose category is not a repeat category.
        ``exclude_bought=True``/``False`` removes all / none of the bought items. ``filter_items``: extra item
        indices never to return. ``threads``: batches scored at once (``recsys.models.parallel``; the results are
        the same for any number). Raises ``IndexError`` for a customer index outside the fitted matrix.
        """
        self._check_fitted()
        rows = np.asarray(customer_idx, dtype=np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_customers):
            raise IndexError(f"customer index out of range 0..{self.n_customers - 1}")
        blocked, bought_policy = self._masks(item_filter, filter_items, exclude_bought)
        ids_out = np.empty((rows.size, k), np.int32)
        scores_out = np.empty((rows.size, k), np.float32)

        def rank(start: int) -> None:
            batch = rows[start : start + batch_size]
            ids_out[start : start + batch.size], scores_out[start : start + batch.size] = self._rank_batch(
                batch, k, blocked, bought_policy
            )

        map_threads(rank, range(0, rows.size, batch_size), threads)
        return ids_out, scores_out

    def _rank_batch(
        self, batch: np.ndarray, k: int, blocked: np.ndarray, bought_policy: bool | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the top ``k`` ``(ids, scores)`` of one batch of customers after the filters.

        ``blocked``: items never to return; ``bought_policy``: drop all / none of the bought items, or a per-item
        "drop if bought" mask. The default scores the whole catalog densely (``_score``); a model that ranks a few
        candidates per customer overrides this hook rather than ``recommend``.
        """
        scores = self._score(batch).astype(np.float32, copy=False)
        self._apply_masks(scores, batch, blocked, bought_policy)
        return top_k(scores, k)

    def _masks(
        self, item_filter: ItemFilter | None, filter_items: np.ndarray | None, exclude_bought: bool | None
    ) -> tuple[np.ndarray, bool | np.ndarray]:
        """Return (items blocked for everyone, bought-item policy: bool or a per-item 'drop if bought' mask)."""
        flt = item_filter if item_filter is not None else self.item_filter
        blocked = np.zeros(self.n_items, dtype=bool)
        if flt is not None:
            blocked |= flt.blocked(self.n_items)
        if filter_items is not None and len(filter_items):
            blocked[np.asarray(filter_items, dtype=np.int64)] = True
        if exclude_bought is not None:
            return blocked, bool(exclude_bought)
        if flt is not None:
            return blocked, ~flt.repeat_mask(self.n_items)
        return blocked, self.excludes_bought_by_default

    def _apply_masks(
        self, scores: np.ndarray, batch: np.ndarray, blocked: np.ndarray, policy: bool | np.ndarray
    ) -> None:
        scores[:, blocked] = -np.inf
        if policy is False:
            return
        bought = self.user_items_[batch]
        rows = np.repeat(np.arange(batch.size), np.diff(bought.indptr))
        cols = bought.indices
        if policy is not True:
            keep = policy[cols]
            rows, cols = rows[keep], cols[keep]
        scores[rows, cols] = -np.inf

    def score(self, customer_idx: np.ndarray | list[int]) -> np.ndarray:
        """Return the model's raw dense scores ``float32[n, n_items]`` of these customers, before any filter: a new
        array, which the caller may change in place.

        ``-inf`` marks an item that is not a candidate for the customer. Another model that builds on this one (the
        hybrid's explore list) reads scores here. Raises ``IndexError`` for a customer index outside the fitted matrix.
        """
        self._check_fitted()
        rows = np.asarray(customer_idx, dtype=np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_customers):
            raise IndexError(f"customer index out of range 0..{self.n_customers - 1}")
        return self._score(rows).astype(np.float32, copy=False)

    @abstractmethod
    def _score(self, batch: np.ndarray) -> np.ndarray:
        """Dense scores ``[len(batch), n_items]`` for these customer indices (a new array, never state the model
        keeps); ``-inf`` = not a candidate."""

    def similar_items(
        self, item_idx: np.ndarray | list[int], k: int, *, candidates: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` most similar items to each item (never the item itself) as ``(ids, scores)``.

        ``candidates``: only these item indices may be returned (e.g. items with enough buyers; much faster on a
        large catalog). Raises ``NotImplementedError`` when the model has no notion of item similarity
        (see ``supports_similar_items``) and ``IndexError`` for an item index outside the fitted matrix.
        """
        self._check_fitted()
        if not self.supports_similar_items:
            raise NotImplementedError(f"{self.name} does not support similar_items")
        items = np.asarray(item_idx, dtype=np.int64).ravel()
        columns = np.arange(self.n_items) if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
        for array in (items, columns):
            if array.size and (array.min() < 0 or array.max() >= self.n_items):
                raise IndexError(f"item index out of range 0..{self.n_items - 1}")
        ids_out = np.empty((items.size, k), np.int32)
        scores_out = np.empty((items.size, k), np.float32)
        for start in range(0, items.size, BATCH_SIZE):
            batch = items[start : start + BATCH_SIZE]
            scores = np.array(self._item_scores(batch, columns), dtype=np.float32)
            scores[batch[:, None] == columns[None, :]] = -np.inf
            ids, best = top_k(scores, k)
            ids_out[start : start + batch.size] = np.where(ids >= 0, columns[np.maximum(ids, 0)], -1)
            scores_out[start : start + batch.size] = best
        return ids_out, scores_out

    def _item_scores(self, batch: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Similarity ``[len(batch), len(columns)]`` of these items to the candidate columns; ``-inf`` = none."""
        raise NotImplementedError

    # ---- persistence ------------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (besides the purchase matrix, saved by the base class)."""
        return {}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:  # noqa: B027 - optional hook; most models have no arrays
        """Rebuild learned state from the arrays written by ``_arrays``."""

    def save(self, directory: Path | str) -> Path:
        """Write ``<name>.npz`` + ``<name>.json`` into ``directory``; return the manifest path."""
        self._check_fitted()
        arrays = dict(self._arrays())
        arrays.update(artifacts.csr_arrays("user_items", self.user_items_))
        if self.item_filter is not None:
            arrays.update(self.item_filter.to_arrays())
        manifest = {
            "model": self.name,
            "class": type(self).__name__,
            "params": self.get_params(),
            "data_fingerprint": self.fingerprint_,
            "trained_at": self.trained_at_,
            "shape": [self.n_customers, self.n_items],
            "id_maps": {"customers": list(self.customers_.external_ids), "items": list(self.items_.external_ids)},
        }
        return artifacts.write(Path(directory), self.name, manifest, arrays)

    @classmethod
    def load(cls, directory: Path | str, name: str | None = None) -> Self:
        """Load a model saved by :meth:`save` (``name`` defaults to the class's name).

        Raises ``ArtifactError`` when files are missing, corrupt, of another model, or of an unknown schema version.
        """
        manifest, arrays = artifacts.read(Path(directory), name or cls.name)
        if manifest.get("class") != cls.__name__:
            raise ArtifactError(f"artifact {name or cls.name} holds a {manifest.get('class')}, not a {cls.__name__}")
        try:
            model = cls(**manifest["params"])
            model.user_items_ = artifacts.csr_from_arrays("user_items", arrays)
            model.customers_ = IdMap(tuple(manifest["id_maps"]["customers"]))
            model.items_ = IdMap(tuple(manifest["id_maps"]["items"]))
            model.fingerprint_ = manifest["data_fingerprint"]
            model.trained_at_ = manifest["trained_at"]
            model.item_filter = ItemFilter.from_arrays(arrays)
            model._restore(arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"artifact {name or cls.name} in {directory} is incomplete or corrupt: {exc}") from exc
        return model

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def manifest_of(directory: Path | str, name: str) -> dict[str, Any]:
    """Return the parsed JSON manifest of one saved model (no arrays loaded)."""
    path = Path(directory) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read model manifest {path}: {exc}") from exc
