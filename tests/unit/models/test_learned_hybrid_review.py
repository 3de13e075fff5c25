"""Review of the learned hybrid (``hybrid_ltr``): regression tests for bugs found in recsys/models/ranker.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from recsys.matrix import build_matrix
from recsys.models import LearnedHybridRecommender
from recsys.models.ranker import basket_lines, candidate_features

START = datetime(2024, 1, 1, tzinfo=UTC)


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
