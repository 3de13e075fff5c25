"""Property checks of the batch-scoring fast paths against brute force on seeded random inputs: the norm-pruned
top-k of factor models with exact (small integer) factors, so that every tie and every bound is exact; empty
batches; and the threaded batches' BLAS limit and errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from recsys.models import ALSRecommender, HybridRecommender
from recsys.models.factor_topk import PRUNE_HEAD, NormOrder, unbought_top_k
from recsys.models.parallel import map_threads
from recsys.models.topk import top_k


def _brute_force(
    users: np.ndarray, items: np.ndarray, bought: sp.csr_matrix, k: int, also: np.ndarray
) -> tuple[np.ndarray, ...]:
    full = users @ items.T
    best = full.max(axis=1, initial=-np.inf) if full.shape[1] else np.zeros(full.shape[0], np.float32)
    seen = np.take_along_axis(full, np.maximum(also, 0), axis=1)
    full[np.repeat(np.arange(users.shape[0]), np.diff(bought.indptr)), bought.indices] = -np.inf
    ids, scores = top_k(full, k)
    return ids, scores, best, seen


def _bought(rng: np.random.Generator, n: int, m: int, density: float, seed: int) -> sp.csr_matrix:
    bought = sp.random(n, m, density=density, format="csr", random_state=seed, dtype=np.float32)
    bought.sort_indices()
    return bought


@pytest.mark.parametrize("seed", range(6))
def test_norm_pruning_with_exact_integer_factors_equals_brute_force_ties_negatives_and_zero_norms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m, f = int(rng.integers(2, 30)), int(rng.integers(2 * PRUNE_HEAD + 100, 7000)), int(rng.integers(1, 6))
    k = int(rng.choice([1, 5, 100, 255]))
    users = rng.integers(-2, 3, (n, f)).astype(np.float32)  # small integers: every product is exact in float32
    items = rng.integers(-2, 3, (m, f)).astype(np.float32) * rng.choice([0, 1, 3], (m, 1)).astype(np.float32)
    users[0] = 0.0  # a customer whose every score is 0
    users[1] = -np.abs(users[1]) - 1.0  # mostly negative scores
    bought = _bought(rng, n, m, float(rng.choice([0.0, 0.02, 0.6])), seed).tolil()
    bought[min(2, n - 1), NormOrder.of(items).order[: PRUNE_HEAD + 50]] = 1.0  # bought every head item: all in the tail
    bought = bought.tocsr()
    bought.sort_indices()
    also = rng.integers(-1, m, (n, 6))
    found = unbought_top_k(users, NormOrder.of(items), bought, k, also)
    assert found is not None
    ids, scores, best, seen = _brute_force(users, items, bought, k, also)
    np.testing.assert_array_equal(found.ids, ids)
    np.testing.assert_array_equal(found.scores, scores)
    np.testing.assert_array_equal(found.best, best)
    np.testing.assert_array_equal(found.also, seen)


def test_norm_pruning_of_an_empty_batch_returns_empty_lists() -> None:
    rng = np.random.default_rng(0)
    items = rng.standard_normal((2 * PRUNE_HEAD + 10, 4)).astype(np.float32)
    found = unbought_top_k(
        np.zeros((0, 4), np.float32), NormOrder.of(items), sp.csr_matrix((0, items.shape[0])), 10, np.zeros((0, 3), int)
    )
    assert found is not None
    assert found.ids.shape == (0, 10) and found.scores.shape == (0, 10)
    assert found.best.shape == (0,) and found.also.shape == (0, 3)


def test_hybrid_with_a_factor_explore_scores_and_lists_candidates_of_no_customers() -> None:
    counts = sp.random(200, 2 * PRUNE_HEAD + 500, density=0.005, format="csr", random_state=1, dtype=np.float32)
    counts.data = np.ceil(counts.data * 3)
    model = HybridRecommender(explore="als", explore_params={"factors": 4, "iterations": 1})
    model.fit(counts, recent=counts)
    nobody = np.array([], np.int64)
    assert model.score(nobody).shape == (0, counts.shape[1])
    assert model.candidate_lists(nobody).ids.shape[0] == 0


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_overlapping_threaded_scoring_in_two_threads_leaves_the_blas_threads_as_they_were() -> None:
    # Two recommend calls at once in one process (Dask threads, a server): the first to finish must not lift the
    # limit under the other, nor the last restore the first's "1" as the process's setting.
    before = _blas_threads()
    if not before or max(before) <= 1:
        pytest.skip("BLAS already runs on one thread here: nothing to restore")
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, list[int]] = {}

    def first(start: int) -> None:
        if start == 0:
            a_in.set()
            assert b_in.wait(10)

    def second(start: int) -> None:
        if start == 0:
            b_in.set()
            assert a_done.wait(10)
            seen["b after a"] = _blas_threads()

    def run_first() -> None:
        map_threads(first, [0, 1], 1)
        a_done.set()

    one = threading.Thread(target=run_first)
    one.start()
    assert a_in.wait(10)
    two = threading.Thread(target=lambda: map_threads(second, [0, 1], 1))
    two.start()
    one.join(10)
    two.join(10)
    assert seen["b after a"] == [1] * len(before)  # still one BLAS thread while the second call scores
    assert _blas_threads() == before


def test_an_error_in_a_worker_thread_reaches_the_caller_and_the_blas_limit_is_lifted() -> None:
    before = _blas_threads()
    calls: list[int] = []

    def fail_on_the_first(start: int) -> int:
        calls.append(start)
        if start == 0:
            raise RuntimeError("batch 0 failed")
        return start

    with pytest.raises(RuntimeError, match="batch 0 failed"):
        map_threads(fail_on_the_first, list(range(200)), 2)
    assert _blas_threads() == before
    assert len(calls) < 200  # the batches not started yet are cancelled, not all scored first


def test_threaded_scoring_inside_a_callers_own_blas_limit_keeps_that_limit() -> None:
    with threadpool_limits(1, "blas"):
        map_threads(lambda start: start, [0, 1, 2], 2)
        assert set(_blas_threads()) <= {1}


def test_local_scoring_in_chunks_equals_one_pass_score_for_score(monkeypatch: pytest.MonkeyPatch) -> None:
    # A chunk of a single batch (the last one here) is scored with the BLAS threads of the machine unless the
    # scoring limits it as every other chunk is: OpenBLAS's float32 products differ in the last bit between them.
    from training.jobs import score_engine
    from training.jobs.score import score_range

    counts = sp.random(300, 5000, density=0.01, format="csr", random_state=3, dtype=np.float32)
    counts.data = np.ceil(counts.data * 3)
    model = ALSRecommender(factors=32, iterations=2).fit(counts)
    whole = score_range(model, 0, 300, 20)
    monkeypatch.setattr(score_engine, "LOCAL_CHUNK", 256)
    chunked = score_engine.score_all(model, 20)
    assert chunked is not None
    assert chunked.equals(whole)


def test_tune_blend_on_two_threads_finds_the_trials_of_one_thread() -> None:
    from recsys.models.hybrid import tune_blend

    counts = sp.random(700, 2 * PRUNE_HEAD + 500, density=0.006, format="csr", random_state=5, dtype=np.float32)
    counts.data = np.ceil(counts.data * 3)
    truth = sp.random(700, counts.shape[1], density=0.002, format="csr", random_state=6, dtype=np.float32)
    truth.data[:] = 1.0
    customers = np.flatnonzero(np.diff(truth.indptr))
    model = HybridRecommender(explore="als", explore_params={"factors": 8, "iterations": 2}).fit(counts, recent=counts)
    one = tune_blend(model, customers, truth, batch_size=128)
    two = tune_blend(model, customers, truth, batch_size=128, threads=2)
    assert one == two


@pytest.mark.parametrize("name", ["als", "item_knn_cosine"])
def test_recommend_on_three_threads_equals_one_thread_for_factor_and_neighbour_models(name: str) -> None:
    from recsys.models import make_model

    counts = sp.random(900, 3000, density=0.01, format="csr", random_state=8, dtype=np.float32)
    counts.data = np.ceil(counts.data * 3)
    params = {"factors": 8, "iterations": 2} if name == "als" else {}
    model = make_model(name, **params).fit(counts)
    customers = np.random.default_rng(1).permutation(900)
    one = model.recommend(customers, 15, batch_size=100)
    three = model.recommend(customers, 15, batch_size=100, threads=3)
    np.testing.assert_array_equal(one[0], three[0])
    np.testing.assert_array_equal(one[1], three[1])
