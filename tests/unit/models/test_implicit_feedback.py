"""Views and clicks as extra implicit feedback: only the collaborative models learn from them, nothing treats a
viewed item as bought, and with both weights at 0 nothing changes at all."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from recsys.columns import Columns
from recsys.exceptions import ConfigError, DataError
from recsys.implicit_feedback import FeedbackWeights, before_holdout, check_weight, feedback_matrices
from recsys.matrix import build_matrix
from recsys.models import ALSRecommender, BuyAgainRecommender, HybridRecommender, UserKNNRecommender
from recsys.models.collaborative import CosineKNNRecommender
from tests.helpers.feedback import feedback_frame

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def _purchases() -> pl.DataFrame:
    """Eight customers: c0..c3 buy bread+butter and some jam; c4..c7 buy tea+milk, c4..c6 also biscuits."""
    rows = []
    for c in range(8):
        basket = ["bread", "butter", "jam"] if c < 4 else ["tea", "milk", "biscuits"]
        if c in (3, 7):
            basket = basket[:2]
        for day in (1, 8):
            rows += [(f"c{c}", item, NOW - dt.timedelta(days=30 - day)) for item in basket]
    return pl.DataFrame(rows, schema=[Columns.customer_id, Columns.item_id, Columns.timestamp], orient="row")


def _views(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return feedback_frame((c, i, NOW - dt.timedelta(days=1), kind) for c, i, kind in rows)


@pytest.fixture
def data() -> tuple:
    tx = _purchases()
    counts = build_matrix(tx, weighting="count")
    recent = build_matrix(
        tx, weighting="decay", half_life_days=120, now=NOW, customers=counts.customers, items=counts.items
    )
    return tx, counts, recent


def _cell(matrix, counts, customer: str, item: str) -> float:
    return float(matrix[counts.customers.to_internal([customer])[0], counts.items.to_internal([item])[0]])


def test_each_viewed_pair_counts_its_weight_once_and_unknown_ids_are_dropped_and_counted(data: tuple) -> None:
    _, counts, _ = data
    rows = _views(
        [("c3", "jam", "view")] * 5  # a refreshed page: one pair
        + [("c3", "jam", "click"), ("c7", "biscuits", "view"), ("ghost", "jam", "view"), ("c3", "caviar", "view")]
    )
    feedback = feedback_matrices(rows, counts, FeedbackWeights(view=0.3, click=1.0), half_life_days=120, now=NOW)
    assert feedback is not None
    assert _cell(feedback.counts, counts, "c3", "jam") == pytest.approx(1.3)
    assert _cell(feedback.counts, counts, "c7", "biscuits") == pytest.approx(0.3)
    assert feedback.counts.nnz == 2 and feedback.counts.shape == counts.matrix.shape
    assert feedback.summary["rows"] == {"view": 8, "click": 1}
    assert feedback.summary["pairs_added"] == {"view": 2, "click": 1}
    assert (feedback.summary["dropped_unknown_customer"], feedback.summary["dropped_unknown_item"]) == (1, 1)
    assert feedback.recent is not None
    assert 0 < _cell(feedback.recent, counts, "c7", "biscuits") < 0.3  # a day old at half-life 120: a bit under


def test_undated_rows_are_dropped_and_counted_and_a_missing_column_is_named(data: tuple) -> None:
    _, counts, _ = data
    rows = _views([("c3", "jam", "view"), ("c7", "jam", "view")]).with_columns(
        pl.when(pl.col(Columns.customer_id) == "c7").then(None).otherwise(pl.col(Columns.timestamp)).alias("timestamp")
    )
    feedback = feedback_matrices(rows, counts, FeedbackWeights(view=1.0), half_life_days=30, now=NOW)
    assert feedback is not None and feedback.recent is not None
    assert (feedback.summary["pairs_added"]["view"], feedback.summary["dropped_no_timestamp"]) == (1, 1)
    assert np.isfinite(feedback.recent.data).all()
    with pytest.raises(DataError, match=r"missing column\(s\) \['type'\]"):
        feedback_matrices(rows.drop("type"), counts, FeedbackWeights(view=1.0))


def test_with_both_weights_at_zero_there_is_no_feedback(data: tuple) -> None:
    _, counts, _ = data
    assert feedback_matrices(_views([("c3", "jam", "view")]), counts, FeedbackWeights()) is None
    assert not FeedbackWeights().enabled and FeedbackWeights(click=0.1).enabled


@pytest.mark.parametrize("value", [-0.1, "abc", float("nan"), float("inf"), True, None, "1e39", 1000.5])
def test_a_bad_weight_is_refused_naming_the_option_and_what_to_give(value: object) -> None:
    with pytest.raises(ConfigError, match=r"view_weight = .* give view_weight a number from 0 to 1000 \(0 = off"):
        check_weight("view_weight", value)
    with pytest.raises(ConfigError, match="click_weight"):
        FeedbackWeights(view=0.1, click=value)  # type: ignore[arg-type]


def test_a_viewed_item_shapes_the_collaborative_model_but_is_never_treated_as_bought(data: tuple) -> None:
    _, counts, recent = data
    c3, jam = counts.customers.to_internal(["c3"])[0], counts.items.to_internal(["jam"])[0]
    feedback = feedback_matrices(
        _views([("c3", "jam", "view"), ("c7", "jam", "view")]),
        counts,
        FeedbackWeights(view=1.0),
        half_life_days=120,
        now=NOW,
    )
    plain = HybridRecommender(explore="user_knn", neighbour_weight=0.0).fit(counts, recent=recent)
    viewed = HybridRecommender(explore="user_knn", neighbour_weight=0.0).fit(counts, recent=recent, feedback=feedback)
    # the explore part learned the views: c3's vector now holds jam
    assert plain.explore_.vectors_[c3, jam] == 0  # type: ignore[attr-defined]
    assert viewed.explore_.vectors_[c3, jam] > 0  # type: ignore[attr-defined]
    # but nothing says c3 bought jam: not in the bought items, not in buy-again, not in the repeat figures
    assert (viewed.user_items_ != counts.matrix).nnz == 0
    assert (viewed.repeat_.scores_ != plain.repeat_.scores_).nnz == 0
    np.testing.assert_array_equal(viewed.repeat_ratio_, plain.repeat_ratio_)
    np.testing.assert_array_equal(viewed.item_repeat_rate_, plain.item_repeat_rate_)
    # so jam stays a new item for c3, suggested from the explore list even when bought items are filtered out
    cand = viewed.candidate_lists(np.array([c3]))
    assert jam in cand.ids[0][~cand.is_repeat[0]] and jam not in cand.ids[0][cand.is_repeat[0]]
    ids, _ = viewed.recommend([c3], 3, exclude_bought=True)
    assert jam in ids[0]
    assert viewed.fingerprint_ != plain.fingerprint_


@pytest.mark.parametrize("model", [ALSRecommender, CosineKNNRecommender, UserKNNRecommender])
def test_collaborative_models_learn_from_views_and_keep_purchases_as_the_bought_items(data: tuple, model) -> None:
    _, counts, recent = data
    feedback = feedback_matrices(
        _views([(f"c{c}", "tea", "click") for c in range(4)]), counts, FeedbackWeights(click=1.0), half_life_days=120
    )
    params = {"iterations": 3} if model is ALSRecommender else {}
    plain = model(**params).fit(counts, recent=recent)
    viewed = model(**params).fit(counts, recent=recent, feedback=feedback)
    assert (viewed.user_items_ != counts.matrix).nnz == 0
    learned = {"user_factors_", "similarity_", "vectors_"} & set(vars(plain))
    assert learned
    for attr in learned:
        before, after = getattr(plain, attr), getattr(viewed, attr)
        diff = np.abs(before - after).max() if isinstance(before, np.ndarray) else abs(before - after).max()
        assert diff > 0, attr


def test_buy_again_ignores_views(data: tuple) -> None:
    _, counts, recent = data
    feedback = feedback_matrices(_views([("c3", "jam", "view")]), counts, FeedbackWeights(view=5.0))
    plain = BuyAgainRecommender().fit(counts, recent=recent)
    viewed = BuyAgainRecommender().fit(counts, recent=recent, feedback=feedback)
    assert (plain.scores_ != viewed.scores_).nnz == 0


def test_a_validation_fit_sees_only_views_from_before_the_customers_held_out_order() -> None:
    held_out = pl.DataFrame(
        {Columns.customer_id: ["c1"], Columns.timestamp: [NOW - dt.timedelta(days=2)]},
        schema={Columns.customer_id: pl.String, Columns.timestamp: pl.Datetime("us", "UTC")},
    )
    rows = pl.concat(
        [
            _views([("c1", "jam", "view")]),  # a day before NOW: after c1's held-out order
            _views([("c1", "tea", "view"), ("c2", "tea", "view")]).with_columns(
                pl.col(Columns.timestamp) - dt.timedelta(days=5)
            ),
        ]
    )
    kept = before_holdout(rows, held_out)
    assert sorted(kept.select(Columns.customer_id, Columns.item_id).iter_rows()) == [("c1", "tea"), ("c2", "tea")]


def test_a_view_of_padded_ids_counts_on_the_bought_ids_as_a_purchase_line_would(data: tuple) -> None:
    # the history strips the ids of purchase lines synced from events; a view with the same padding is the same pair
    _, counts, _ = data
    rows = _views([(" c3", "jam ", "view"), ("c7 ", " biscuits", "click")])
    feedback = feedback_matrices(rows, counts, FeedbackWeights(view=0.5, click=1.0))
    assert feedback is not None
    assert _cell(feedback.counts, counts, "c3", "jam") == pytest.approx(0.5)
    assert _cell(feedback.counts, counts, "c7", "biscuits") == pytest.approx(1.0)
    assert (feedback.summary["dropped_unknown_customer"], feedback.summary["dropped_unknown_item"]) == (0, 0)


def test_a_validation_fit_misses_the_views_of_the_held_out_orders_own_day_padded_ids_or_not() -> None:
    # browse at 09:00, buy at 10:00: the model trained the night before never saw that view, nor may validation
    order = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    held_out = pl.DataFrame(
        {Columns.customer_id: ["c1"], Columns.timestamp: [order]},
        schema={Columns.customer_id: pl.String, Columns.timestamp: pl.Datetime("us", "UTC")},
    )
    seen = [
        ("c1", "jam", order - dt.timedelta(hours=1)),
        (" c1 ", "tea", order - dt.timedelta(hours=2)),  # the same customer, as purchase lines strip ids
        ("c1", "milk", order.replace(hour=0)),  # midnight of the order's day
        ("c1", "bread", order - dt.timedelta(hours=11)),  # 23:00 the day before: known to that night's model
    ]
    rows = feedback_frame((c, i, when, "view") for c, i, when in seen)
    assert before_holdout(rows, held_out).get_column(Columns.item_id).to_list() == ["bread"]


@pytest.mark.parametrize("model", [BuyAgainRecommender, UserKNNRecommender])
def test_feedback_built_on_other_ids_is_refused_by_every_model(data: tuple, model) -> None:
    tx, counts, recent = data
    other = build_matrix(tx.filter(pl.col(Columns.customer_id) != "c0"), weighting="count")
    feedback = feedback_matrices(_views([("c3", "jam", "view")]), other, FeedbackWeights(view=1.0))
    with pytest.raises(ValueError, match=r"feedback has shape \(7, 6\), the purchases \(8, 6\)"):
        model().fit(counts, recent=recent, feedback=feedback)
