"""Exact top-k selection of score rows: the kernel every model's ``recommend`` ends in.

:func:`top_k` returns the ``k`` best columns per row, ties to the lower column index, ``-inf`` = not a candidate.
It is the hot loop of batch scoring (1M customers × 50k items × the explore list of the hybrid), so it avoids
``argpartition`` over the whole catalog: a value-only ``np.partition`` (about 3× cheaper) gives each row's k-th best
score, the few entries at or above it are gathered, and only those are sorted. The result is the same as
:func:`top_k_reference` (the plain ``argpartition`` + sort), which stays for small rows, for rows with a NaN, and as
the oracle of the tests.

:func:`rank_by_score_then_id` is the same selection over candidate lists that carry their own item ids (the
hybrid's few hundred candidates per customer): best score first, ties to the lower item id.
"""

from __future__ import annotations

import numpy as np

# Below this many columns (or when k is a large share of them), the plain sort is as fast and simpler.
FAST_MIN_COLUMNS = 1024
FAST_MAX_SHARE = 8  # the partition path when k <= columns / FAST_MAX_SHARE


def _empty(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -1, np.int32), np.full((n, k), -np.inf, np.float32)


def _finish(ids: np.ndarray, best: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mark the slots without a finite score as empty (id ``-1``, ``-inf``) and pad the rows to ``k`` columns."""
    ids[~np.isfinite(best)] = -1
    best[ids < 0] = -np.inf
    if ids.shape[1] < k:
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, k - best.shape[1])), constant_values=-np.inf)
    return ids, best


def top_k_reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` by ``argpartition`` over every column, then a sort of the ``k`` picked (the plain way)."""
    n, m = scores.shape
    kk = min(k, m)
    if kk <= 0:
        return _empty(n, k)
    if kk < m:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        # argpartition picks an arbitrary item among those tied at the k-th score; in such rows take every item
        # above it and the lowest-index tied ones, so that the lower index wins as everywhere else.
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        tied = (scores == kth).sum(axis=1) > (np.take_along_axis(scores, part, axis=1) == kth).sum(axis=1)
        bad = np.flatnonzero(tied & np.isfinite(kth[:, 0]))
        if bad.size:
            rows, threshold = scores[bad], kth[bad]
            above = rows > threshold
            equal = rows == threshold
            room = kk - above.sum(axis=1, keepdims=True)
            chosen = above | (equal & (np.cumsum(equal, axis=1) <= room))
            part[bad] = np.nonzero(chosen)[1].reshape(bad.size, kk)
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    best = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    return _finish(ids, best, k)


def top_k(scores: np.ndarray, k: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` best columns per row of ``scores`` as ``(ids int32, scores float32)``, best first.

    ``-inf`` marks a non-candidate; such slots (and slots beyond the number of columns) get id ``-1``.
    Ties are broken by the lower column index so that results are reproducible. ``labels``: the item id of each
    column (distinct, >= 0) when the columns are not the items in order; the ids returned and the ties are then by
    label.
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk <= 0:
        return _empty(n, k)
    if m < FAST_MIN_COLUMNS or kk * FAST_MAX_SHARE > m:
        return _top_k_plain(scores, k, labels)
    scores = np.ascontiguousarray(scores)
    # Each row's k-th best value: every entry of the top k is >= it, and only a few entries are.
    top = np.partition(scores, m - kk, axis=1)[:, m - kk :]
    if np.isnan(top).any():  # NaN sorts last for partition but first for -scores: keep the reference's order
        return _top_k_plain(scores, k, labels)
    flat = np.flatnonzero(scores >= _floor(top[:, 0])[:, None])
    cols = flat % m
    return _best_of(n, kk, k, flat // m, cols if labels is None else np.asarray(labels)[cols], scores.ravel()[flat])


def _top_k_plain(scores: np.ndarray, k: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if labels is None:
        return top_k_reference(scores, k)
    return rank_by_score_then_id_reference(np.broadcast_to(np.asarray(labels), scores.shape), scores, k)


def _floor(kth: np.ndarray) -> np.ndarray:
    """The least score kept per row: its k-th best, or (a row with fewer than k candidates) any finite one."""
    return np.where(kth == -np.inf, np.finfo(kth.dtype).min, kth)


def _best_of(
    n: int, kk: int, k: int, rows: np.ndarray, ids: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``kk`` entries ``(rows, ids, values)`` of each of ``n`` rows, by value then the lower id; padded.

    ``rows`` is ascending. float32 values (the usual case) are packed with their id into one ``uint64`` key per entry
    and sorted row by row (after a partition when ties leave many), a few times faster than a three-key lexsort;
    ``ids`` must be >= -1 and below 2**31.
    """
    counts = np.bincount(rows, minlength=n)
    width = int(counts.max(initial=0))
    position = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    if values.dtype == np.float32 and n * width <= PACKED_MAX_ENTRIES:
        keys = np.full((n, max(width, kk)), _EMPTY_KEY, np.uint64)
        keys[rows, position] = _packed(values, ids)
        if keys.shape[1] > PACKED_SORT_WIDTH * kk:  # many ties at the k-th best: partition first
            keys = np.partition(keys, kk - 1, axis=1)[:, :kk]
        keys = np.sort(keys, axis=1)[:, :kk]
        out_ids, best = _unpacked(keys)
        return _finish(out_ids, best, k)
    order = np.lexsort((ids, -values, rows))
    rows, ids, values = rows[order], ids[order], values[order]
    keep = position < kk  # position depends on the row only, and the rows are in the same order
    out_ids = np.full((n, kk), -1, np.int32)
    best = np.full((n, kk), -np.inf, np.float32)
    out_ids[rows[keep], position[keep]] = ids[keep]
    best[rows[keep], position[keep]] = values[keep]
    return _finish(out_ids, best, k)


PACKED_MAX_ENTRIES = 1 << 25  # pack the entries into a rows x (most entries of a row) key array up to 256 MB
PACKED_SORT_WIDTH = 4  # sort the keys of a row directly when there are at most this many times k of them
_EMPTY_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)
_SIGN = np.uint32(0x80000000)


def _packed(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """uint64 keys in the order: higher float32 value first, then the lower id (``-0.0`` and ``0.0`` alike)."""
    bits = (values + np.float32(0.0)).view(np.uint32)  # + 0.0 turns -0.0 into 0.0, as the comparisons see it
    ascending = np.where(bits & _SIGN, ~bits, bits | _SIGN)  # the float order as an unsigned order
    return ((~ascending).astype(np.uint64) << np.uint64(32)) | (ids.astype(np.int64) + 1).astype(np.uint64)


def _unpacked(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = ((keys & np.uint64(0xFFFFFFFF)).astype(np.int64) - 1).astype(np.int32)
    ascending = ~(keys >> np.uint64(32)).astype(np.uint32)
    bits = np.where(ascending & _SIGN, ascending & ~_SIGN, ~ascending)
    values = bits.view(np.float32).copy()
    empty = keys == _EMPTY_KEY
    ids[empty], values[empty] = -1, -np.inf
    return ids, values


def rank_by_score_then_id_reference(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_by_score_then_id` by a lexsort of every candidate (the plain way)."""
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    best = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    chosen = np.take_along_axis(ids, order, axis=1).astype(np.int32)
    return _finish(chosen, best, k)


def rank_by_score_then_id(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` of each row's candidates ``ids`` (``-1`` = empty) by ``scores``, ties to the lower item id.

    Rows without a finite score left are padded with id ``-1`` and ``-inf``. The same selection as :func:`top_k`
    (a value partition finds each row's k-th best score; only the candidates at or above it are sorted), with the
    candidate's own item id, not its column, breaking ties.
    """
    n, c = ids.shape
    kk = min(k, c)
    if kk <= 0:
        return _empty(n, k)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if kk < c:
        top = np.partition(scores, c - kk, axis=1)[:, c - kk :]
        if np.isnan(top).any():  # as top_k: NaN keeps the plain sort's order
            return rank_by_score_then_id_reference(ids, scores, k)
        flat = np.flatnonzero(scores >= _floor(top[:, 0])[:, None])
    else:
        flat = np.flatnonzero(scores > -np.inf)
    return _best_of(n, kk, k, flat // c, np.ascontiguousarray(ids).ravel()[flat], scores.ravel()[flat])


def best_finite_or_zero(scores: np.ndarray) -> np.ndarray:
    """Per row, the largest finite score, or 0 when that is larger and the row has a non-finite one (``-inf``: not a
    candidate): ``max(where(isfinite(s), s, 0))`` in two reductions instead of a masked copy of the batch."""
    high, low = scores.max(axis=1), scores.min(axis=1)
    best = np.where(np.isfinite(low), high, np.maximum(high, 0.0)).astype(scores.dtype, copy=False)
    odd = np.flatnonzero(~np.isfinite(high))  # +inf, NaN or no candidate at all: the plain way, on these rows only
    if odd.size:
        rows = scores[odd]
        best[odd] = np.max(np.where(np.isfinite(rows), rows, 0.0), axis=1)
    return best
