"""Top-k ranking metrics, vectorised over all evaluated customers at once.

Inputs are a ``(n_customers, K)`` int array of recommended item indices per customer (best first; ``-1`` pads a
short list) and a CSR ``truth`` matrix (customers × items; any non-zero = relevant). Row ``u`` of both is the
same customer. Only customers with at least one relevant item are averaged over (recall is undefined otherwise).

Per customer ``u`` with relevant set ``R_u`` and top-k list ``L_u@k``, ``hits = |L_u@k ∩ R_u|``:

- ``precision@k = hits / k``
- ``recall@k = hits / |R_u|``
- ``hit_rate@k = 1 if hits > 0``
- ``ndcg@k = Σ_{j<k, L_u[j] ∈ R_u} 1/log2(j+2)  /  Σ_{j<min(k,|R_u|)} 1/log2(j+2)``
- ``map@k = Σ_{j<k, L_u[j] ∈ R_u} precision@(j+1)  /  min(k, |R_u|)``

**Two NDCG conventions.** ``ndcg@k`` above is the usual one (the ideal DCG cut at ``min(k, |R_u|)``, over the items
a model could score). Next-basket papers compute it differently, and their figures are only comparable to ours in
their convention: the code of TIFU-KNN (SIGIR 2020) and TAIW (RecSys 2023) takes the ideal DCG over the *whole*
basket ``B_u`` (items unseen in training included), so a basket of 25 items can never reach 1 at ``k = 10``.
Given ``basket_sizes`` (``|B_u|`` per customer), :func:`ranking_metrics` also returns

- ``ndcg_basket@k = Σ_{j<k, L_u[j] ∈ R_u} 1/log2(j+2)  /  Σ_{j<|B_u|} 1/log2(j+2)``
- ``recall_basket@k = hits / |B_u|`` (the next-basket recall: unseen items count as misses)

**Repeat / explore.** Given the customer's training history ``H_u`` the relevant set splits into
``R_u ∩ H_u`` (*repeat*: test items the customer had bought before) and ``R_u \\ H_u`` (*explore*: new to the
customer). ``repeat_<metric>@k`` / ``explore_<metric>@k`` are the same formulas with that subset as ``R_u``,
averaged over customers whose subset is non-empty; the recommended list is not filtered (a repeat item
recommended to a customer is simply never an explore hit).

**Catalog.** ``coverage@k`` = distinct items in all top-k lists / number of items. ``novelty@k`` = mean
self-information ``-log2(p_i)`` of the recommended items, where ``p_i`` is the share of training customers who
bought item ``i`` (floored at ``1 / n_train_customers`` so never-bought items stay finite).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
RANKING_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate")


def hit_matrix(top_k: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Return a bool array shaped like ``top_k``: ``True`` where the recommended item is relevant."""
    top_k = np.asarray(top_k)
    n_users, n_items = truth.shape
    if top_k.shape[0] != n_users:
        raise ValueError(f"top_k has {top_k.shape[0]} rows but truth has {n_users}")
    truth = _relevant(truth)
    if truth.nnz == 0 or top_k.size == 0:
        return np.zeros(top_k.shape, dtype=bool)
    # One int64 key per (user, item): membership becomes a sorted search instead of a Python loop.
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth.indptr))
    truth_keys = np.sort(rows * n_items + truth.indices.astype(np.int64))
    valid = top_k >= 0
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + np.where(valid, top_k, 0).astype(np.int64)
    pos = np.searchsorted(truth_keys, keys)
    pos = np.minimum(pos, truth_keys.size - 1)
    hits = (truth_keys[pos] == keys) & valid
    # an item listed twice is one hit, at its first position
    if top_k.ndim == 2 and top_k.shape[1] > 1:
        order = np.argsort(np.where(valid, top_k, -1), axis=1, kind="stable")
        ranked = np.take_along_axis(top_k, order, axis=1)
        repeat = np.zeros(top_k.shape, dtype=bool)
        repeat[:, 1:] = (ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] >= 0)
        later = np.zeros(top_k.shape, dtype=bool)
        np.put_along_axis(later, order, repeat, axis=1)
        hits &= ~later
    return hits


def _relevant(truth: sp.spmatrix) -> sp.csr_matrix:
    """Return ``truth`` as CSR with duplicates merged and stored zeros dropped (only non-zero entries are relevant)."""
    truth = truth.tocsr()
    if not truth.has_canonical_format or (truth.data == 0).any():  # copy, never mutate the caller's
        truth = truth.copy()
        truth.sum_duplicates()
        truth.eliminate_zeros()
    return truth


def ranking_metrics(
    top_k: np.ndarray,
    truth: sp.csr_matrix,
    ks: Sequence[int] = DEFAULT_KS,
    prefix: str = "",
    *,
    basket_sizes: np.ndarray | None = None,
) -> dict[str, float]:
    """Return ``{prefix + "<metric>@<k>": mean}`` for precision, recall, ndcg, map and hit_rate at every ``k``.

    Customers without relevant items are ignored; with none at all every metric is ``nan``. ``k`` larger than
    the lists' width counts the missing positions as misses. ``basket_sizes`` (one per row, ``>=`` the row's
    relevant items): also ``ndcg_basket@k`` and ``recall_basket@k``, the next-basket convention (module docstring).
    """
    if basket_sizes is not None:
        basket_sizes = np.asarray(basket_sizes, dtype=np.float64)
        if basket_sizes.shape != (truth.shape[0],):
            raise ValueError(f"basket_sizes has shape {basket_sizes.shape}; expected ({truth.shape[0]},)")
    truth = _relevant(truth)
    hits = hit_matrix(top_k, truth)
    n_rel = np.diff(truth.indptr).astype(np.float64)
    users = n_rel > 0
    out: dict[str, float] = {}
    width = hits.shape[1] if hits.ndim == 2 else 0
    for k in ks:
        if users.sum() == 0:
            out.update({f"{prefix}{m}@{k}": float("nan") for m in RANKING_METRICS})
            continue
        h = np.zeros((int(users.sum()), k), dtype=np.float64)
        w = min(k, width)
        h[:, :w] = hits[users, :w]
        rel = n_rel[users]
        n_hits = h.sum(axis=1)
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        dcg = h @ discounts
        ideal = np.cumsum(discounts)[np.minimum(rel, k).astype(np.int64) - 1]
        precision_at_j = np.cumsum(h, axis=1) / np.arange(1, k + 1)
        ap = (precision_at_j * h).sum(axis=1) / np.minimum(rel, k)
        out[f"{prefix}precision@{k}"] = float(np.mean(n_hits / k))
        out[f"{prefix}recall@{k}"] = float(np.mean(n_hits / rel))
        out[f"{prefix}ndcg@{k}"] = float(np.mean(dcg / ideal))
        out[f"{prefix}map@{k}"] = float(np.mean(ap))
        out[f"{prefix}hit_rate@{k}"] = float(np.mean(n_hits > 0))
        if basket_sizes is not None:
            size = np.maximum(basket_sizes[users], rel)  # a basket holds at least the items that can be scored
            out[f"{prefix}ndcg_basket@{k}"] = float(np.mean(dcg / _ideal_dcg(size)))
            out[f"{prefix}recall_basket@{k}"] = float(np.mean(n_hits / size))
    return out


def _ideal_dcg(sizes: np.ndarray) -> np.ndarray:
    """``Σ_{j<n} 1/log2(j+2)`` for each ``n`` in ``sizes`` (the whole basket, not cut at k)."""
    n = sizes.astype(np.int64)
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, int(n.max(initial=1)) + 2)))])
    return table[n]


def per_customer_metrics(
    top_k: np.ndarray, truth: sp.csr_matrix, k: int, *, basket_sizes: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Return per-row ``ndcg``, ``recall`` (and with ``basket_sizes`` ``ndcg_basket``, ``recall_basket``) at ``k``.

    Rows are those with a relevant item, in order; their means are :func:`ranking_metrics`' figures (for paired
    comparisons such as a bootstrap over customers).
    """
    truth = _relevant(truth)
    hits = hit_matrix(np.asarray(top_k)[:, :k], truth).astype(np.float64)
    if hits.shape[1] < k:
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    rel = np.diff(truth.indptr).astype(np.float64)
    users = rel > 0
    hits, rel = hits[users], rel[users]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    out = {
        "ndcg": dcg / np.cumsum(discounts)[np.minimum(rel, k).astype(np.int64) - 1],
        "recall": hits.sum(axis=1) / rel,
    }
    if basket_sizes is not None:
        size = np.maximum(np.asarray(basket_sizes, np.float64)[users], rel)
        out["ndcg_basket"] = dcg / _ideal_dcg(size)
        out["recall_basket"] = hits.sum(axis=1) / size
    return out


def split_repeat_explore(truth: sp.csr_matrix, history: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Return ``(repeat, explore)``: the relevant items the customer had / had not bought in ``history``."""
    truth = (truth.tocsr() != 0).astype(np.float32)
    seen = (history.tocsr() != 0).astype(np.float32)
    repeat = truth.multiply(seen).tocsr()
    explore = (truth - repeat).tocsr()
    repeat.eliminate_zeros()
    explore.eliminate_zeros()
    return repeat, explore


def catalog_metrics(
    top_k: np.ndarray, item_popularity: np.ndarray, n_customers: int, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Return ``coverage@k`` and ``novelty@k`` (see module docstring) for every ``k``.

    ``item_popularity``: number of training customers who bought each item (length = number of items).
    """
    n_items = item_popularity.shape[0]
    share = np.maximum(item_popularity.astype(np.float64), 1.0) / max(n_customers, 1)
    info = -np.log2(np.minimum(share, 1.0))
    out: dict[str, float] = {}
    for k in ks:
        block = np.asarray(top_k)[:, :k]
        recommended = block[block >= 0]
        out[f"coverage@{k}"] = float(np.unique(recommended).size / n_items) if n_items else float("nan")
        out[f"novelty@{k}"] = float(info[recommended].mean()) if recommended.size else float("nan")
    return out


def item_buyers(matrix: sp.spmatrix) -> np.ndarray:
    """Return the number of customers (rows) with a non-zero entry for each item (column)."""
    csc = sp.csc_matrix(matrix)
    csc.eliminate_zeros()
    return np.diff(csc.indptr)


def evaluate_top_k(
    top_k: np.ndarray,
    truth: sp.csr_matrix,
    history: sp.csr_matrix,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    item_popularity: np.ndarray | None = None,
    n_train_customers: int | None = None,
    basket_sizes: np.ndarray | None = None,
) -> dict[str, float]:
    """Return every metric: overall, ``repeat_``/``explore_`` prefixed, catalog coverage and novelty.

    ``history``: the training rows of the same customers as ``truth`` (same columns). Novelty uses
    ``item_popularity`` / ``n_train_customers`` (buyers per item over *all* training customers) when given,
    else the buyers within ``history``. ``basket_sizes``: each row's whole test basket (items unseen in training
    included), for the next-basket ``ndcg_basket@k`` / ``recall_basket@k`` (overall only).
    """
    repeat, explore = split_repeat_explore(truth, history)
    popularity = item_buyers(history) if item_popularity is None else item_popularity
    n_customers = history.shape[0] if n_train_customers is None else n_train_customers
    out = ranking_metrics(top_k, truth, ks, basket_sizes=basket_sizes)
    out.update(ranking_metrics(top_k, repeat, ks, prefix="repeat_"))
    out.update(ranking_metrics(top_k, explore, ks, prefix="explore_"))
    out.update(catalog_metrics(top_k, popularity, n_customers, ks))
    out["customers"] = float(np.count_nonzero(np.diff(truth.tocsr().indptr)))
    out["repeat_customers"] = float(np.count_nonzero(np.diff(repeat.indptr)))
    out["explore_customers"] = float(np.count_nonzero(np.diff(explore.indptr)))
    return out
