"""One contract every recommender must honour (fit/recommend/similar_items/save/load), run for every model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.exceptions import ArtifactError
from recsys.models import MODELS, ItemFilter, Recommender, load_recommender, make_model

# Small parameters keep every fit well under a second.
FAST_PARAMS: dict[str, dict] = {
    "als": {"factors": 8, "iterations": 3},
    "bpr": {"factors": 8, "iterations": 5, "num_threads": 1},
    "item_knn_cosine": {"neighbours": 10},
    "item_knn_bm25": {"neighbours": 10},
    "hybrid": {"explore_params": {"neighbours": 5}, "repeat_candidates": 10, "explore_candidates": 10},
    "user_knn": {"neighbours": 5},
    "hybrid_ltr": {"rounds": 5, "min_data_in_leaf": 2, "target_baskets": 3, "candidates": 10, "explore_candidates": 5},
}
N_CUSTOMERS, N_ITEMS = 40, 25


def _counts(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.6, size=(N_CUSTOMERS, N_ITEMS)).astype(np.float32)
    dense[:, 0] = 0  # one item nobody bought
    dense[0] = 0
    dense[0, [1, 2, 3]] = [5, 2, 1]  # customer 0 bought exactly items 1, 2, 3
    return sp.csr_matrix(dense)


def _lines(counts: sp.csr_matrix) -> pl.DataFrame:
    """Purchase lines behind ``counts`` (ids "0", "1", … as a bare matrix gets): the j-th unit of a count is in
    basket j."""
    coo = counts.tocoo()
    rows = [(str(c), str(i), j) for c, i, v in zip(coo.row, coo.col, coo.data, strict=True) for j in range(int(v))]
    start = datetime(2024, 1, 1)
    return pl.DataFrame(
        {
            "customer_id": [c for c, _, _ in rows],
            "item_id": [i for _, i, _ in rows],
            "order_id": [f"{c}-{j}" for c, _, j in rows],
            "timestamp": [start + timedelta(days=7 * j) for _, _, j in rows],
            "quantity": [1.0] * len(rows),
        }
    )


def _fit_on(model: Recommender, counts: sp.csr_matrix, recent: sp.csr_matrix) -> Recommender:
    return model.fit(counts, recent=recent, transactions=_lines(counts))


def _fit(name: str, counts: sp.csr_matrix | None = None) -> Recommender:
    counts = _counts() if counts is None else counts
    recent = counts.multiply(0.5).tocsr()
    return _fit_on(make_model(name, **FAST_PARAMS.get(name, {})), counts, recent)


@pytest.fixture(params=sorted(MODELS))
def model_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_fit_returns_self_and_init_learns_nothing(model_name: str) -> None:
    model = make_model(model_name, **FAST_PARAMS.get(model_name, {}))
    assert not [key for key in vars(model) if key.endswith("_")]
    assert _fit_on(model, _counts(), _counts()) is model
    assert [key for key in vars(model) if key.endswith("_")]


def test_recommend_shapes_dtypes_and_order(model_name: str) -> None:
    ids, scores = _fit(model_name).recommend(np.arange(10), 5)
    assert ids.shape == scores.shape == (10, 5)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    valid = ids >= 0
    assert ((ids < N_ITEMS) | ~valid).all()
    finite = np.where(valid, scores, np.finfo(np.float32).min)
    assert not (np.diff(finite, axis=1) > 1e-6).any(), "scores must be best first"
    assert not (valid[:, 1:] & ~valid[:, :-1]).any(), "empty slots come last"
    for row in ids:
        chosen = row[row >= 0]
        assert len(set(chosen.tolist())) == chosen.size, "an item appears twice in one list"


def test_k_larger_than_catalog_pads_with_minus_one(model_name: str) -> None:
    ids, scores = _fit(model_name).recommend(np.arange(3), N_ITEMS + 7)
    assert ids.shape == (3, N_ITEMS + 7)
    assert (ids[:, N_ITEMS:] == -1).all()
    assert np.isneginf(scores[ids < 0]).all()


def test_filter_removes_out_of_stock_and_excluded_items(model_name: str) -> None:
    model = _fit(model_name)
    flt = ItemFilter(
        in_stock=np.array([i != 2 for i in range(N_ITEMS)]),
        repeat_category=np.ones(N_ITEMS, bool),
        excluded=np.array([i == 1 for i in range(N_ITEMS)]),
    )
    ids, _ = model.recommend(np.arange(N_CUSTOMERS), N_ITEMS, item_filter=flt, filter_items=np.array([3]))
    assert not np.isin(ids, [1, 2, 3]).any()


def test_bought_items_of_non_repeat_categories_are_never_shown(model_name: str) -> None:
    counts = _counts()
    model = _fit(model_name, counts)
    repeat = np.ones(N_ITEMS, bool)
    repeat[[1, 2]] = False  # customer 0 bought 1, 2 (non-repeat) and 3 (repeat)
    model.item_filter = ItemFilter(np.ones(N_ITEMS, bool), repeat, np.zeros(N_ITEMS, bool))
    ids, _ = model.recommend(np.arange(N_CUSTOMERS), N_ITEMS)
    for row, customer in zip(ids, range(N_CUSTOMERS), strict=True):
        bought_non_repeat = counts[customer].indices[~repeat[counts[customer].indices]]
        assert not np.isin(row, bought_non_repeat).any()
    ids_all, _ = model.recommend(np.array([0]), N_ITEMS, exclude_bought=True)
    assert not np.isin(ids_all, [1, 2, 3]).any()


def test_save_load_round_trip_gives_identical_recommendations(model_name: str, tmp_path: Path) -> None:
    model = _fit(model_name)
    model.item_filter = ItemFilter.allow_all(N_ITEMS)
    manifest = json.loads(model.save(tmp_path).read_text())
    assert manifest["schema_version"] == 1 and manifest["model"] == model_name
    assert len(manifest["id_maps"]["items"]) == N_ITEMS and manifest["data_fingerprint"]
    loaded = load_recommender(tmp_path / f"{model_name}.json")
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    customers = np.arange(N_CUSTOMERS)
    for a, b in zip(model.recommend(customers, 10), loaded.recommend(customers, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    if model.supports_similar_items:
        np.testing.assert_array_equal(model.similar_items(np.arange(5), 4)[0], loaded.similar_items(np.arange(5), 4)[0])


def test_unknown_schema_version_is_refused(model_name: str, tmp_path: Path) -> None:
    path = _fit(model_name).save(tmp_path)
    manifest = json.loads(path.read_text())
    manifest["schema_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema_version 999"):
        load_recommender(path)


def test_fit_twice_starts_fresh(model_name: str) -> None:
    model = _fit(model_name)
    smaller = _counts(seed=3)[:, :10].tocsr()
    _fit_on(model, smaller, smaller)
    assert model.n_items == 10
    ids, _ = model.recommend(np.arange(5), 20)
    assert ids.max() < 10
    fresh = _fit_on(make_model(model_name, **FAST_PARAMS.get(model_name, {})), smaller, smaller)
    for a, b in zip(model.recommend(np.arange(5), 5), fresh.recommend(np.arange(5), 5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_similar_items_never_returns_the_item_itself(model_name: str) -> None:
    model = _fit(model_name)
    if not model.supports_similar_items:
        with pytest.raises(NotImplementedError):
            model.similar_items(np.array([1]), 3)
        return
    items = np.arange(1, N_ITEMS)
    ids, scores = model.similar_items(items, 5)
    assert ids.shape == (items.size, 5) and scores.dtype == np.float32
    assert not (ids == items[:, None]).any()
    allowed = np.array([2, 4, 6, 8])
    only, _ = model.similar_items(items, 5, candidates=allowed)
    assert np.isin(only[only >= 0], allowed).all()
    assert not (only == items[:, None]).any()


def test_unknown_customer_index_is_an_error(model_name: str) -> None:
    with pytest.raises(IndexError):
        _fit(model_name).recommend(np.array([N_CUSTOMERS]), 3)
