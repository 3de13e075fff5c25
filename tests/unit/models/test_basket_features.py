"""The learned hybrid's item-cycle features and the shared per-day trending lists: what they read, and only from before
each household's reference day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from recsys.matrix import build_matrix
from recsys.models.basket_features import basket_lines, candidate_features
from recsys.models.item_history import item_context

START = datetime(2024, 1, 1, tzinfo=UTC)


def _line(customer: str, item: str, day: int) -> dict:
    return {
        "customer_id": customer,
        "item_id": item,
        "order_id": f"{customer}-{day}",
        "timestamp": START + timedelta(days=day),
        "quantity": 1.0,
    }


def _others_buy_tea(days: tuple[int, ...]) -> pl.DataFrame:
    """ "a" buys tea on day 0 and milk on day 14 (its last basket); o0-o2 buy tea (and milk) on ``days`` (+1 h)."""
    rows = [_line("a", "tea", 0), _line("a", "milk", 14)]
    rows += [_line(f"o{c}", item, d) for c in range(3) for d in days for item in ("tea", "milk")]
    return pl.DataFrame(rows).with_columns(
        pl.when(pl.col("customer_id") != "a")
        .then(pl.col("timestamp") + timedelta(hours=1))
        .otherwise(pl.col("timestamp"))
    )


def _tea_row_of_a(lines: pl.DataFrame) -> dict:
    matrix = build_matrix(lines, weighting="count")
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    features = candidate_features(ranked, 0, 10, 0)
    mine = features.filter(
        (pl.col("_cu") == matrix.customers.index_of("a")) & (pl.col("_it") == matrix.items.index_of("tea"))
    )
    return mine.row(0, named=True)


def test_item_repurchase_days_is_everyones_mean_gap_between_purchases_before_the_reference_day() -> None:
    row = _tea_row_of_a(_others_buy_tea((1, 11)))  # every other buyer came back for tea after 10 days
    assert row["item_repurchase_days"] == pytest.approx(10.0)
    assert row["days_since_last"] == pytest.approx(14.0)
    assert row["item_cycle_position"] == pytest.approx(1.4)  # a's tea is 14 days old: overdue by the item's cycle


def test_repurchases_after_the_reference_day_do_not_change_the_item_cycle() -> None:
    before = _tea_row_of_a(_others_buy_tea((1, 11)))
    after = _tea_row_of_a(_others_buy_tea((1, 11, 40, 41)))  # later gaps of 29 and 1 days, after a's last basket
    assert after["item_repurchase_days"] == before["item_repurchase_days"]
    assert after == before


def test_an_item_nobody_bought_twice_has_no_item_cycle() -> None:
    row = _tea_row_of_a(_others_buy_tea((1,)))
    assert row["item_repurchase_days"] == -1.0 and row["item_cycle_position"] == -1.0


def test_trending_lists_computed_once_give_every_cutoff_the_features_computed_per_cutoff() -> None:
    rows = [_line(f"c{c}", f"i{(c * b) % 7}", 3 * b + c) for c in range(6) for b in range(8)]
    lines = pl.DataFrame(rows)
    matrix = build_matrix(lines, weighting="count")
    ranked = basket_lines(lines, matrix.customers, matrix.items)
    shared = item_context(ranked, trending=5)
    wider = item_context(ranked, trending=9)  # a longer list serves a shorter request too
    for cutoff in (0, 1, 2, 3):
        own = candidate_features(ranked, cutoff, 10, 5)
        assert not own.filter(pl.col("is_new") == 1.0).is_empty()
        assert candidate_features(ranked, cutoff, 10, 5, context=shared).equals(own), cutoff
        assert candidate_features(ranked, cutoff, 10, 5, context=wider).equals(own), cutoff
