"""The best items of a factor model for a batch of customers without scoring the whole catalog (norm pruning).

A factor model scores ``u · v``, which is at most ``|u| |v|`` (Cauchy-Schwarz). So once a customer has ``k`` items
scoring at least ``t``, no item with ``|v| < t / |u|`` can enter their top ``k``. The items are kept in order of
decreasing factor norm: the ``PRUNE_HEAD`` largest are scored for everyone, which gives each customer's provisional
k-th best ``t``; only the items down to the smallest norm any customer of the batch still needs are scored after
that. With Zipf items the norms fall fast: on the 200k-customer synthetic retailer (30k items) a customer needs a
fifth of the catalog, a batch of 256 the largest two fifths.

The result is the exact top-k of the full product, with the same tie rule (the lower item id): an item left out
scores below the k-th best, with a margin (``MARGIN``) far above float32 rounding. The scores themselves are BLAS
products over fewer columns, so they can differ from those of the full product in the last bit of float32
(OpenBLAS's results depend on the shape of a product); a ranking can then differ only between items whose scores
are that close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.models.topk import best_finite_or_zero, rank_by_score_then_id, top_k

PRUNE_HEAD = 2048  # items of the largest norms scored for every customer of a batch
TAIL_GROUPS = 4  # groups of a batch's customers, by how many items each needs, for the items after the head
MARGIN = 1e-3  # relative: an item is left out only when |u| |v| < (1 - MARGIN) × the k-th best score


@dataclass(frozen=True)
class NormOrder:
    """Item factors in order of decreasing norm: ``order`` (item ids), ``norms``, ``factors`` and each item's
    ``position`` in that order."""

    order: np.ndarray
    norms: np.ndarray
    factors: np.ndarray
    position: np.ndarray

    @classmethod
    def of(cls, item_factors: np.ndarray) -> NormOrder:
        norms = np.linalg.norm(item_factors.astype(np.float64), axis=1)
        order = np.argsort(-norms, kind="stable").astype(np.int32)
        position = np.empty(order.size, np.int64)
        position[order] = np.arange(order.size)
        return cls(order, norms[order], np.ascontiguousarray(item_factors[order], np.float32), position)


@dataclass(frozen=True)
class Unbought:
    """Per customer of a batch: the ``k`` best items not bought (``ids``, ``scores``; ``-1``/``-inf`` = none), the
    best score over every item, bought ones included (``best``: as :func:`best_finite_or_zero`), and the scores of
    the items asked about (``also``)."""

    ids: np.ndarray
    scores: np.ndarray
    best: np.ndarray
    also: np.ndarray


def unbought_top_k(
    users: np.ndarray, items: NormOrder, bought: sp.csr_matrix, k: int, also: np.ndarray
) -> Unbought | None:
    """The best ``k`` items not in ``bought`` (rows aligned with ``users``) by ``users @ items.T``; ``None`` when
    pruning does not apply (a catalog of at most twice ``PRUNE_HEAD`` items, non-finite factors).

    After the head, the customers are grouped by how far down the norms they need to go (``TAIL_GROUPS`` groups),
    so that one customer who needs most of the catalog does not make the whole batch score it.
    """
    n, m = users.shape[0], items.order.size
    head = max(PRUNE_HEAD, 8 * k)
    if m <= 2 * head or not (np.isfinite(users).all() and np.isfinite(items.norms).all()):
        return None
    scores = users @ items.factors[:head].T
    best = best_finite_or_zero(scores)
    _mask(scores, bought, items.position, 0, head)
    ids, top = top_k(scores, k, labels=items.order[:head])
    # The provisional k-th best bounds what an item must score; a customer whose k-th best is <= 0 needs every item.
    kth = top[:, k - 1].astype(np.float64)
    lengths = np.linalg.norm(users.astype(np.float64), axis=1)
    bound = np.where((kth > 0) & (lengths > 0), kth / np.maximum(lengths, 1e-300) * (1.0 - MARGIN), -np.inf)
    needed = np.maximum(np.searchsorted(-items.norms, -bound, side="right"), head)
    more_ids = np.full((n, k), -1, np.int32)
    more = np.full((n, k), -np.inf, np.float32)
    by_need = np.argsort(needed, kind="stable")
    for group in np.array_split(by_need, max(min(TAIL_GROUPS, n), 1)):  # one empty group for no customers
        stop = int(needed[group].max(initial=head))
        if stop <= head:
            continue
        tail = users[group] @ items.factors[head:stop].T
        best[group] = np.maximum(best[group], best_finite_or_zero(tail))
        _mask(tail, bought[group], items.position, head, stop)
        more_ids[group], more[group] = top_k(tail, k, labels=items.order[head:stop])
    ids, top = rank_by_score_then_id(np.hstack([ids, more_ids]), np.hstack([top, more]), k)
    picked = items.factors[items.position[np.maximum(also, 0)]]
    also_scores = np.einsum("nf,ncf->nc", users, picked, dtype=np.float32)
    return Unbought(ids, top, best, also_scores)


def _mask(scores: np.ndarray, bought: sp.csr_matrix, position: np.ndarray, start: int, stop: int) -> None:
    """Set to ``-inf`` the bought items among the columns ``[start, stop)`` of the norm order."""
    rows = np.repeat(np.arange(bought.shape[0]), np.diff(bought.indptr))
    where = position[bought.indices]
    inside = (where >= start) & (where < stop)
    scores[rows[inside], where[inside] - start] = -np.inf
