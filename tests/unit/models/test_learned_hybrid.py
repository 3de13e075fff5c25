"""The learned hybrid (``hybrid_ltr``): what it learns, what it must never see, and its errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys.ids import IdMap
from recsys.matrix import build_matrix
from recsys.models import BuyAgainRecommender, LearnedHybridRecommender
from recsys.models.basket_features import FEATURES, basket_lines, candidate_features, training_frame
from recsys.models.item_history import item_context

START = datetime(2024, 1, 1, tzinfo=UTC)
FAST = {"rounds": 40, "min_data_in_leaf": 5, "target_baskets": 6}


def _alternating(n_customers: int = 60, n_baskets: int = 12) -> pl.DataFrame:
    """Every customer buys "milk" in every basket and alternates "tea" (odd baskets) and "coffee" (even ones).

    Baskets are a week apart; some customers end on a tea basket, others on a coffee one. The next basket
    holds the drink that was *not* in the last basket, which a recency-weighted frequency gets wrong.
    """
    rows = []
    for c in range(n_customers):
        baskets = n_baskets + c % 2  # half end on an odd basket, half on an even one
        for b in range(baskets):
            when = START + timedelta(days=7 * b, hours=c)
            drink = "tea" if b % 2 else "coffee"
            for item in ("milk", drink):
                rows.append(
                    {
                        "customer_id": f"c{c}",
                        "item_id": item,
                        "order_id": f"c{c}-{b}",
                        "timestamp": when,
                        "quantity": 1.0,
                    }
                )
    return pl.DataFrame(rows)


def _fit(lines: pl.DataFrame, **params: object) -> tuple[LearnedHybridRecommender, object]:
    matrix = build_matrix(lines, weighting="count")
    return LearnedHybridRecommender(**{**FAST, **params}).fit(matrix, transactions=lines), matrix


def test_learns_a_pattern_that_recency_weighted_frequency_misses() -> None:
    lines = _alternating()
    model, matrix = _fit(lines)
    items = matrix.items
    last_drink = (
        lines.sort("timestamp")
        .group_by("customer_id", maintain_order=True)
        .agg(pl.col("item_id").filter(pl.col("item_id") != "milk").last())
    )
    expected_next = {
        row["customer_id"]: ("coffee" if row["item_id"] == "tea" else "tea") for row in last_drink.iter_rows(named=True)
    }
    customers = np.arange(len(matrix.customers))
    ids, _ = model.recommend(customers, 3)
    decayed = build_matrix(
        lines,
        weighting="decay",
        half_life_days=30,
        now=lines["timestamp"].max(),
        customers=matrix.customers,
        items=items,
    )
    buy_again = BuyAgainRecommender(half_life_days=30).fit(matrix, recent=decayed)
    ba_ids, _ = buy_again.recommend(customers, 3)

    def right_drink_first(row: np.ndarray, customer: str) -> bool:
        names = [items.external_ids[i] for i in row if i >= 0]
        wrong = "tea" if expected_next[customer] == "coffee" else "coffee"
        return names.index(expected_next[customer]) < names.index(wrong)

    learned = np.mean([right_drink_first(ids[i], c) for i, c in enumerate(matrix.customers.external_ids)])
    baseline = np.mean([right_drink_first(ba_ids[i], c) for i, c in enumerate(matrix.customers.external_ids)])
    # buy-again puts the drink of the last basket first for everyone; the ranker learned the alternation.
    assert learned >= 0.9
    assert baseline == 0.0


def test_features_of_a_target_basket_ignore_that_basket_and_later_ones() -> None:
    lines = _alternating(n_customers=6)
    matrix = build_matrix(lines, weighting="count")
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    # Rewrite what customers bought in their last two baskets: features as of cutoff 2 must not change.
    changed = ranked.with_columns(
        pl.when(pl.col("_rl") <= 2).then(pl.lit(0, pl.Int32)).otherwise(pl.col("_it")).alias("_it"),
        pl.when(pl.col("_rl") <= 2).then(pl.col("_q") * 50).otherwise(pl.col("_q")).alias("_q"),
    )
    before = candidate_features(ranked, 2, 10, 0).sort("_cu", "_it")
    after = candidate_features(changed, 2, 10, 0).sort("_cu", "_it")
    assert before.equals(after)
    assert (
        not candidate_features(ranked, 0, 10, 0)
        .sort("_cu", "_it")
        .equals(candidate_features(changed, 0, 10, 0).sort("_cu", "_it"))
    )


def test_a_households_features_ignore_what_others_bought_after_its_last_basket() -> None:
    lines = _alternating(n_customers=8)  # weekly baskets for 12-13 weeks
    early = pl.DataFrame([_line("early", item, f"e{b}", 7 * b) for b in range(5) for item in ("milk", "tea")])
    # everyone but "early" makes "late_hit" the best seller after early's last basket (day 28)
    hit = pl.DataFrame([_line(f"c{c}", "late_hit", f"c{c}-{b}", 7 * b) for c in range(8) for b in range(5, 12)])
    base = pl.concat([lines, early, hit.with_columns(pl.col("timestamp").dt.offset_by("1h"))])
    last_day = START + timedelta(days=28)
    later = pl.col("timestamp") >= last_day + timedelta(days=1)
    moved = base.with_columns(
        # others' later lines move two months on, and tea and coffee swap in them
        pl.when(later).then(pl.col("timestamp") + timedelta(days=60)).otherwise(pl.col("timestamp")),
        pl.when(later & (pl.col("item_id") == "tea"))
        .then(pl.lit("coffee"))
        .when(later & (pl.col("item_id") == "coffee"))
        .then(pl.lit("tea"))
        .otherwise(pl.col("item_id"))
        .alias("item_id"),
    )
    matrix = build_matrix(base, weighting="count")
    who = matrix.customers.index_of("early")

    def features(frame: pl.DataFrame, cutoff: int) -> pl.DataFrame:
        ranked = basket_lines(frame, matrix.customers, matrix.items)
        return candidate_features(ranked, cutoff, 10, 5).filter(pl.col("_cu") == who).sort("_it")

    for cutoff in (0, 1, 2):  # as served, and as the targets of training
        assert features(base, cutoff).equals(features(moved, cutoff)), cutoff
    served = features(base, 0)
    assert matrix.items.index_of("late_hit") not in served["_it"].to_list()  # not trending before its last basket
    assert not served.filter(pl.col("is_new") == 1.0).is_empty()  # coffee was trending then (others bought it)


def test_training_labels_are_the_target_basket_and_features_precede_it() -> None:
    lines = _alternating(n_customers=4)
    matrix = build_matrix(lines, weighting="count")
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    train = training_frame(ranked, 3, 10, 0)
    assert set(train["_r"].unique().to_list()) == {1, 2, 3}
    for (customer, r), group in train.group_by("_cu", "_r"):
        target = set(ranked.filter((pl.col("_cu") == customer) & (pl.col("_rl") == r))["_it"].to_list())
        assert set(group.filter(pl.col("_y") == 1)["_it"].to_list()) == target & set(group["_it"].to_list())
        # the candidate last bought in the basket right before the target is "1 basket ago", never 0
        assert group["baskets_since_last"].min() == 1


def test_categories_of_another_catalog_size_are_refused() -> None:
    lines = _alternating(n_customers=4)
    matrix = build_matrix(lines, weighting="count")
    model = LearnedHybridRecommender(**FAST)
    model.item_categories = np.zeros(len(matrix.items) + 1, np.int64)
    with pytest.raises(ValueError, match="item_categories has 4 entries, the matrix has 3 items"):
        model.fit(matrix, transactions=lines)


def test_fit_without_lines_is_refused_with_a_clear_error() -> None:
    matrix = build_matrix(_alternating(n_customers=4), weighting="count")
    with pytest.raises(ValueError, match="transactions="):
        LearnedHybridRecommender().fit(matrix)


def test_lines_without_a_timestamp_name_the_missing_column() -> None:
    lines = _alternating(n_customers=4)
    matrix = build_matrix(lines, weighting="count")
    with pytest.raises(ValueError, match="timestamp"):
        LearnedHybridRecommender().fit(matrix, transactions=lines.drop("timestamp"))


def test_one_basket_per_customer_falls_back_to_buy_again_order() -> None:
    lines = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "y", "y", "x", "z"],
            "order_id": ["1", "1", "1", "2", "2"],
            # b shops the day before a: what b bought is "trending" as of a's day (never the other way round)
            "timestamp": [START] * 3 + [START - timedelta(days=1)] * 2,
            "quantity": [1.0, 1.0, 3.0, 1.0, 1.0],
        }
    )
    model, matrix = _fit(lines)
    assert model.training_rows_ == 0
    ids, scores = model.recommend(np.array([matrix.customers.index_of("a")]), 3, exclude_bought=False)
    assert sorted(matrix.items.to_external(ids[0][ids[0] >= 0])) == ["x", "y", "z"]  # z: a new popular item
    with pytest.raises(ValueError, match="no ranker"):
        model.feature_importance()


def test_lines_of_ids_outside_the_matrix_are_ignored() -> None:
    lines = _alternating(n_customers=10)
    matrix = build_matrix(lines, weighting="count")
    extra = pl.DataFrame(
        {
            "customer_id": ["stranger"],
            "item_id": ["caviar"],
            "order_id": ["s-1"],
            "timestamp": [START],
            "quantity": [1.0],
        }
    )
    model = LearnedHybridRecommender(**FAST).fit(matrix, transactions=pl.concat([lines, extra]))
    assert model.scores_.shape == matrix.shape


def test_feature_importance_names_every_feature() -> None:
    model, _ = _fit(_alternating(n_customers=20))
    importance = model.feature_importance()
    assert set(importance) == set(FEATURES)
    assert sum(importance.values()) > 0
    assert list(importance.values()) == sorted(importance.values(), reverse=True)


def test_same_data_same_scores() -> None:
    lines = _alternating(n_customers=20)
    first, _ = _fit(lines)
    second, _ = _fit(lines.sample(fraction=1.0, shuffle=True, seed=7))
    assert (first.scores_ != second.scores_).nnz == 0


def test_item_ids_follow_the_matrix_not_the_lines() -> None:
    lines = _alternating(n_customers=8)
    items = IdMap(("tea", "milk", "coffee", "unsold"))
    matrix = build_matrix(lines, weighting="count", items=items)
    model = LearnedHybridRecommender(**FAST).fit(matrix, transactions=lines)
    assert model.scores_.shape[1] == 4
    assert model.scores_[:, 3].nnz == 0  # nobody bought it and it is not trending


def test_a_horizon_makes_every_basket_within_it_the_target() -> None:
    lines = _alternating(n_customers=2)  # weekly baskets alternating tea / coffee, milk in each
    matrix = build_matrix(lines, weighting="count")
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    names = matrix.items.external_ids

    def targets(horizon: float | None) -> set[str]:
        frame = training_frame(ranked, 3, 10, 0, horizon_days=horizon).filter(
            (pl.col("_r") == 3) & (pl.col("_cu") == 0)
        )
        return {names[i] for i in frame.filter(pl.col("_y") == 1)["_it"].to_list()}

    assert len(targets(None)) == 2  # milk and one drink: the 3rd-last basket only
    assert targets(8.0) == {"milk", "tea", "coffee"}  # the basket a week later counts too
    assert targets(8.0) != targets(None)


def test_training_on_a_sample_of_customers_still_scores_everyone() -> None:
    lines = _alternating(n_customers=30)
    full, matrix = _fit(lines)
    sampled, _ = _fit(lines, max_training_customers=10)
    assert 0 < sampled.training_rows_ < full.training_rows_
    assert set(np.unique(sampled.scores_.nonzero()[0])) == set(range(len(matrix.customers)))


@pytest.mark.parametrize(
    "params",
    [
        {"target_baskets": 0},
        {"candidates": 0},
        {"rounds": 1.5},
        {"learning_rate": 0.0},
        {"horizon_days": -1.0},
        {"max_training_customers": 0},
    ],
)
def test_bad_parameters_are_refused_when_the_model_is_built(params: dict) -> None:
    with pytest.raises(ValueError, match="hybrid_ltr"):
        LearnedHybridRecommender(**params)


# ====================================================================================================================
# Regressions from the review of the learned hybrid (was test_learned_hybrid_review.py)
#
# Review of the learned hybrid (``hybrid_ltr``): regression tests for bugs found in recsys/models/ranker.py.
# ====================================================================================================================


def _line(customer: str, item: str, order: str, day: int) -> dict:
    return {
        "customer_id": customer,
        "item_id": item,
        "order_id": order,
        "timestamp": START + timedelta(days=day),
        "quantity": 1.0,
    }


def test_an_item_the_customer_bought_is_never_an_explore_candidate() -> None:
    """Explore candidates are anti-joined only against the *truncated* repeat list (top ``candidates``), so an item the
    customer bought but that fell outside that list comes back as ``is_new = 1`` with "never bought" features."""
    rows = [_line("a", "x", f"a{b}", b) for b in range(4)]  # x in every basket: a's best buy-again
    rows.append(_line("a", "y", "a0", 0))  # y bought once, in a's first basket
    rows += [_line(f"b{b}", "y", f"b{b}", b) for b in range(3)]  # y is the trending item
    lines = pl.DataFrame(rows)
    matrix = build_matrix(lines, weighting="count")
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    a, y = matrix.customers.index_of("a"), matrix.items.index_of("y")

    features = candidate_features(ranked, 0, 1, 5)  # one repeat candidate (x), five explore candidates
    row = features.filter((pl.col("_cu") == a) & (pl.col("_it") == y))
    assert row.filter(pl.col("is_new") == 1.0).is_empty(), row.select("is_new", "baskets_with_item").to_dicts()


def test_a_ranker_that_learned_nothing_does_not_replace_the_buy_again_order() -> None:
    """With too little data for one split (default ``min_data_in_leaf=100``, as ``run_train`` fits it) the booster is
    constant, every candidate gets the same score and the order falls back to item index instead of buy-again."""
    rows = []
    for c in range(6):
        for b in range(4):
            rows.append(_line(f"c{c}", "zz", f"c{c}-{b}", 7 * b))  # zz in every basket
        rows.append(_line(f"c{c}", "aa", f"c{c}-0", 0))  # aa once, long ago
    lines = pl.DataFrame(rows)
    matrix = build_matrix(lines, weighting="count")
    model = LearnedHybridRecommender(rounds=20).fit(matrix, transactions=lines)
    assert model.training_rows_ > 0  # a ranker was trained ...
    ids, scores = model.recommend([matrix.customers.index_of("c0")], 2)
    # ... but it learned nothing: both items score alike and "aa" (index 0) wins the tie over the item bought every
    # week.
    assert matrix.items.to_external(ids[0][:1]) == ["zz"], scores


def test_category_features_follow_the_customers_own_baskets_of_that_category() -> None:
    # "a" buys some milk in each weekly basket, alternating two brands; "oat" is the milk that others made trending
    rows = [_line("a", "milk_x" if b % 2 else "milk_y", f"a{b}", 7 * b) for b in range(6)]
    rows += [_line("a", "bread", f"a{b}", 7 * b) for b in (0, 5)]
    rows += [_line(f"o{c}", "oat", f"o{c}-{b}", 7 * b + 1) for c in range(4) for b in range(4)]
    lines = pl.DataFrame(rows)
    matrix = build_matrix(lines, weighting="count")
    names = matrix.items.external_ids
    codes = np.array([0 if ("milk" in name or name == "oat") else 1 for name in names])
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    features = candidate_features(ranked, 0, 10, 5, context=item_context(ranked, codes))
    mine = features.filter(pl.col("_cu") == matrix.customers.index_of("a"))
    row = {names[r["_it"]]: r for r in mine.iter_rows(named=True)}
    assert row["milk_x"]["category_baskets"] == row["oat"]["category_baskets"] == 6  # milk in all six baskets
    assert row["milk_x"]["item_share_of_category"] == pytest.approx(3 / 6)
    assert row["oat"]["is_new"] == 1.0 and row["oat"]["item_share_of_category"] == 0.0
    assert row["bread"]["category_repurchase_days"] == pytest.approx(35.0)  # bought five weeks apart
    assert row["milk_y"]["category_days_since_last"] == 0.0  # milk was in the last basket (milk_x's)
    without = candidate_features(ranked, 0, 10, 5).filter(pl.col("_cu") == matrix.customers.index_of("a"))
    assert (without["category_baskets"] == -1.0).all()  # no catalog: missing, not zero


def test_early_stopping_ends_boosting_once_held_out_customers_stop_improving(tmp_path) -> None:
    lines = _alternating(n_customers=200)  # early stopping needs 200 customers (20 held out)
    model, matrix = _fit(lines, rounds=300, early_stopping_rounds=5)
    assert 0 < model.boosting_rounds_ < 300  # the alternation is learned long before 300 rounds
    small, _ = _fit(_alternating(n_customers=40), rounds=30, early_stopping_rounds=5)
    assert small.boosting_rounds_ == 30  # too few customers to hold some out: every round is boosted
    ids, _ = model.recommend(np.arange(len(matrix.customers)), 2)
    assert (ids >= 0).all()
    model.save(tmp_path)
    assert LearnedHybridRecommender.load(tmp_path).boosting_rounds_ == model.boosting_rounds_
