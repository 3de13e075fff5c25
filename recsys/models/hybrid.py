"""The hybrid: one ranking from "repeat" candidates (buy-again) and "explore" candidates (user-kNN, ALS, item-kNN …).

For each customer the top ``repeat_candidates`` items of buy-again and the top ``explore_candidates`` items of
the collaborative model that the customer has *not* bought are scaled to ``[0, 1]`` (divided by the customer's
best score in each list) and blended::

    score = w_u × repeat_score          (items the customer bought before; buy-again × item_repeat_rate ** item_prior)
    score = (1 − w_u) × explore_score   (items new to the customer)
    w_u   = clip(repeat_weight + repeat_slope × (repeat_ratio_u − mean repeat_ratio), 0, 1)

``item_repeat_rate`` is the share of an item's buyers who bought it more than once (staples high, one-offs low):
a population prior that orders the many items a customer bought only once or twice.
With ``neighbour_weight`` β > 0 a repeat item's scaled score becomes ``(repeat + β × explore score of that item,
scaled by the customer's best explore score) / (1 + β)`` — the neighbour term of TIFU-KNN when ``explore="user_knn"``.
``repeat_ratio_u`` is the share of the customer's purchase lines that re-buy an item they had bought before, so
habitual shoppers get more of their usual items and exploratory ones more new items. ``repeat_weight`` and
``repeat_slope`` are tuned on a validation split with :func:`tune_blend` (which never needs a refit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.models.base import BATCH_SIZE, Recommender, top_k
from recsys.models.baselines import BuyAgainRecommender
from recsys.models.factor_topk import Unbought
from recsys.models.parallel import map_threads
from recsys.models.topk import best_finite_or_zero, rank_by_score_then_id

if TYPE_CHECKING:
    import polars as pl

    from recsys.implicit_feedback import Feedback


@dataclass(frozen=True)
class Candidates:
    """Per customer: candidate item ids ``[n, C]`` (``-1`` = empty), scaled scores and which list they came from."""

    ids: np.ndarray
    scaled: np.ndarray
    is_repeat: np.ndarray

    def blend(self, weight: np.ndarray) -> np.ndarray:
        """Return blended scores ``[n, C]`` for per-customer repeat weights ``weight`` (``[n]``); empty = ``-inf``."""
        w = weight[:, None]
        out = np.where(self.is_repeat, w * self.scaled, (1.0 - w) * self.scaled).astype(np.float32)
        out[self.ids < 0] = -np.inf
        return out


class HybridRecommender(Recommender):
    """Buy-again and a collaborative model blended per customer (see the module docstring)."""

    name: ClassVar[str] = "hybrid"

    def __init__(
        self,
        explore: str = "user_knn",
        repeat_weight: float = 0.7,
        repeat_slope: float = 1.0,
        repeat_candidates: int = 100,
        explore_candidates: int = 100,
        half_life_days: float = 120.0,
        item_prior: float = 0.5,
        neighbour_weight: float = 0.35,
        explore_params: dict[str, Any] | None = None,
    ) -> None:
        self.explore = explore
        self.repeat_weight = repeat_weight
        self.repeat_slope = repeat_slope
        self.repeat_candidates = repeat_candidates
        self.explore_candidates = explore_candidates
        self.half_life_days = half_life_days
        self.item_prior = item_prior
        self.neighbour_weight = neighbour_weight
        self.explore_params = explore_params

    def _components(self) -> tuple[BuyAgainRecommender, Recommender]:
        from recsys.models import explore_models  # the registry imports this module

        choices = explore_models()
        if self.explore not in choices:
            raise ValueError(f"explore model {self.explore!r} unknown; choose one of {', '.join(choices)}")
        return BuyAgainRecommender(half_life_days=self.half_life_days), choices[self.explore](
            **(self.explore_params or {})
        )

    def _fit(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, transactions: pl.DataFrame | None) -> None:
        self._fit_parts(counts, recent, None)

    def _fit_feedback(
        self,
        counts: sp.csr_matrix,
        recent: sp.csr_matrix | None,
        transactions: pl.DataFrame | None,
        feedback: Feedback,
    ) -> None:
        """Views and clicks go to the explore part only; buy-again and the repeat figures stay purchases."""
        self._fit_parts(counts, recent, feedback)

    def _fit_parts(self, counts: sp.csr_matrix, recent: sp.csr_matrix | None, feedback: Feedback | None) -> None:
        repeat, explore = self._components()
        self.repeat_ = repeat.fit(counts, recent=recent)
        self.explore_ = explore.fit(counts, recent=recent, feedback=feedback)
        self.repeat_ratio_ = repeat_ratio(counts)
        self.item_repeat_rate_ = item_repeat_rate(counts)

    def customer_weights(self, batch: np.ndarray) -> np.ndarray:
        """Return the repeat weight ``w_u`` in ``[0, 1]`` of each customer index."""
        centred = self.repeat_ratio_[batch] - float(self.repeat_ratio_.mean())
        return np.clip(self.repeat_weight + self.repeat_slope * centred, 0.0, 1.0).astype(np.float32)

    def candidate_lists(self, batch: np.ndarray) -> Candidates:
        """Return the repeat and explore candidates of these customers, each list scaled to ``[0, 1]``."""
        self._check_fitted()
        repeat_rows = self.repeat_.scores_[batch]
        prior = self.item_repeat_rate_[repeat_rows.indices] ** self.item_prior if self.item_prior else 1.0
        r_ids, r_scores = sparse_top_k(repeat_rows, repeat_rows.data * prior, self.repeat_candidates)
        repeat_scaled = _scale(r_scores)
        explore = _explore_lists(self.explore_, batch, self.explore_candidates, self.user_items_[batch], r_ids)
        e_ids, e_scores = explore.ids, explore.scores
        if self.neighbour_weight:
            # TIFU-KNN's neighbour term: what the explore model thinks of an item the customer already buys.
            support = explore.also / np.maximum(explore.best[:, None], 1e-12)
            support = np.where(np.isfinite(support) & (r_ids >= 0), np.clip(support, 0.0, 1.0), 0.0)
            repeat_scaled = (repeat_scaled + self.neighbour_weight * support) / (1.0 + self.neighbour_weight)
        ids = np.concatenate([r_ids, e_ids], axis=1)
        scaled = np.concatenate([repeat_scaled.astype(np.float32), _scale(e_scores)], axis=1)
        is_repeat = np.zeros(ids.shape, bool)
        is_repeat[:, : r_ids.shape[1]] = True
        return Candidates(ids, scaled, is_repeat)

    def _score(self, batch: np.ndarray) -> np.ndarray:
        cand = self.candidate_lists(batch)
        blended = cand.blend(self.customer_weights(batch))
        dense = np.full((batch.size, self.n_items), -np.inf, np.float32)
        valid = cand.ids >= 0
        rows = np.broadcast_to(np.arange(batch.size)[:, None], cand.ids.shape)
        dense[rows[valid], cand.ids[valid]] = blended[valid]
        return dense

    def _rank_batch(
        self, batch: np.ndarray, k: int, blocked: np.ndarray, bought_policy: bool | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filters are applied to the few hundred candidates of each customer, not to the whole catalog."""
        cand = self.candidate_lists(batch)
        scores = cand.blend(self.customer_weights(batch))
        safe = np.maximum(cand.ids, 0)
        drop = blocked[safe]
        # Repeat candidates are exactly the bought items; explore candidates never are.
        if bought_policy is True:
            drop |= cand.is_repeat
        elif bought_policy is not False:
            drop |= cand.is_repeat & np.asarray(bought_policy)[safe]
        scores[drop] = -np.inf
        return _rank_candidates(cand.ids, scores, k)

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"repeat_ratio": self.repeat_ratio_, "item_repeat_rate": self.item_repeat_rate_}
        arrays.update({f"repeat__{k}": v for k, v in self.repeat_._arrays().items()})
        arrays.update({f"explore__{k}": v for k, v in self.explore_._arrays().items()})
        return arrays

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.repeat_ratio_ = np.asarray(arrays["repeat_ratio"], np.float32)
        self.item_repeat_rate_ = np.asarray(arrays["item_repeat_rate"], np.float32)
        repeat, explore = self._components()
        for prefix, part in (("repeat__", repeat), ("explore__", explore)):
            part.user_items_ = self.user_items_
            part.customers_, part.items_ = self.customers_, self.items_
            part.fingerprint_, part.trained_at_ = self.fingerprint_, self.trained_at_
            part._restore({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})
        self.repeat_, self.explore_ = repeat, explore


def sparse_top_k(rows: sp.csr_matrix, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` stored entries per row of ``rows`` ranked by ``values`` (aligned with ``rows.data``), as ``top_k``
    does.

    Works on the stored entries only, so a customer's few hundred purchases are ranked without a dense row.
    """
    n = rows.shape[0]
    counts = np.diff(rows.indptr)
    row_of = np.repeat(np.arange(n), counts)
    # Two stable sorts instead of one lexsort (3× faster): by score, then by row; CSR column order breaks ties.
    by_score = np.argsort(-np.asarray(values, np.float64), kind="stable")
    order = by_score[np.argsort(row_of[by_score], kind="stable")]
    position = np.arange(order.size) - rows.indptr[row_of[order]]
    keep = position < k
    ids = np.full((n, k), -1, np.int32)
    scores = np.full((n, k), -np.inf, np.float32)
    ids[row_of[order][keep], position[keep]] = rows.indices[order][keep]
    scores[row_of[order][keep], position[keep]] = np.asarray(values, np.float32)[order][keep]
    return ids, scores


def _explore_lists(model: Recommender, batch: np.ndarray, k: int, bought: sp.csr_matrix, also: np.ndarray) -> Unbought:
    """The explore model's ``k`` best items the customers have not bought, its best score over every item and its
    scores of the items ``also``: pruned for a factor model (``factor_topk``), from the dense rows otherwise."""
    fast = getattr(model, "top_unbought", None)
    found = fast(batch, k, bought, also) if fast is not None else None
    if found is not None:
        return found
    # Dense rows: with a few thousand candidate items per customer, a dense top-k beats sorting sparse entries.
    scores = model.score(batch)
    if not scores.flags.owndata or not scores.flags.writeable:  # masked below: never a view of the model's state
        scores = np.array(scores, np.float32)
    best = best_finite_or_zero(scores)
    seen = np.take_along_axis(scores, np.maximum(also, 0), axis=1)
    scores[np.repeat(np.arange(batch.size), np.diff(bought.indptr)), bought.indices] = -np.inf
    ids, top = top_k(scores, k)
    return Unbought(ids, top, best, seen)


def _rank_candidates(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` candidates per row, ties to the lower item id (as :func:`top_k` over the whole catalog)."""
    return rank_by_score_then_id(ids, scores, k)


def _scale(scores: np.ndarray) -> np.ndarray:
    """Divide each row by its best (first) finite score; scores <= 0 become a tiny positive value."""
    best = scores[:, :1]
    safe = np.where(np.isfinite(best) & (best > 0), best, 1.0)
    scaled = np.clip(scores / safe, 1e-6, 1.0)
    scaled[~np.isfinite(scores)] = 0.0
    return scaled.astype(np.float32)


def repeat_ratio(counts: sp.csr_matrix) -> np.ndarray:
    """Return per customer the share of purchase lines that re-buy an item bought before (0 for no purchases)."""
    lines = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    distinct = np.diff(counts.indptr).astype(np.float64)
    return np.where(lines > 0, 1.0 - distinct / np.maximum(lines, 1.0), 0.0).astype(np.float32)


def item_repeat_rate(counts: sp.csr_matrix, prior_buyers: float = 1.0, prior_rate: float = 0.3) -> np.ndarray:
    """Return per item the share of its buyers who bought it more than once, smoothed towards ``prior_rate``.

    Staples (milk, bananas) score high, one-off purchases low; the smoothing keeps items with one buyer near the prior.
    """
    buyers = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
    repeaters = np.bincount(counts.indices[counts.data >= 2], minlength=counts.shape[1]).astype(np.float64)
    return ((repeaters + prior_buyers * prior_rate) / (buyers + prior_buyers)).astype(np.float32)


@dataclass(frozen=True)
class BlendTrial:
    """One evaluated (repeat_weight, repeat_slope) pair and its validation metric."""

    repeat_weight: float
    repeat_slope: float
    score: float


TUNE_BATCH = BATCH_SIZE  # customers whose candidates tune_blend builds at once (dense explore scores: 256 × items)


def tune_blend(
    model: HybridRecommender,
    customer_idx: np.ndarray,
    truth: sp.csr_matrix,
    *,
    k: int = 10,
    weights: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
    slopes: Sequence[float] = (0.0, 1.0, 2.0),
    batch_size: int | None = None,
    threads: int = 1,
) -> list[BlendTrial]:
    """Grid-search the blend on a validation split; set the best pair on ``model`` and return all trials, best first.

    ``model`` must be fitted on the training part only; ``truth`` is the validation purchases (rows = the model's
    customers, binary). The metric is NDCG@``k`` over ``customer_idx``. Components are scored once, ``batch_size``
    (default ``TUNE_BATCH``)
    customers at a time (the explore model's dense scores of every customer at once would not fit in memory at
    scale: 1M customers × 50k items is 186 GB), and only their candidate lists are kept; ``threads`` batches at once
    (the trials are the same for any number).
    """
    from recsys.evaluation.metrics import ranking_metrics

    rows = np.asarray(customer_idx, dtype=np.int64)
    # Candidates a batch of customers at a time (as ``recommend`` does): all at once, the explore model's dense scores
    # are customers × items (100k × 5k items: 2 GB and its copies; 1M × 50k: 200 GB). The lists themselves are small.
    size = batch_size or TUNE_BATCH
    parts = map_threads(lambda s: model.candidate_lists(rows[s : s + size]), range(0, max(rows.size, 1), size), threads)
    cand = Candidates(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("ids", "scaled", "is_repeat")))
    ratio = model.repeat_ratio_[rows] - float(model.repeat_ratio_.mean())
    target = truth[rows]
    trials = []
    for weight in weights:
        for slope in slopes:
            w = np.clip(weight + slope * ratio, 0.0, 1.0).astype(np.float32)
            top, _ = _rank_candidates(cand.ids, cand.blend(w), k)  # ranked (ties included) exactly as recommend serves
            score = ranking_metrics(top, target, (k,))[f"ndcg@{k}"]
            trials.append(BlendTrial(float(weight), float(slope), float(score)))
    trials.sort(key=lambda t: -t.score)
    model.repeat_weight, model.repeat_slope = trials[0].repeat_weight, trials[0].repeat_slope
    return trials
