"""Splits: no leakage from test into tuning, explicit handling of unseen customers and items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys.columns import Columns
from recsys.exceptions import DataError
from recsys.splits import next_basket_split, temporal_split

START = datetime(2024, 1, 1, tzinfo=UTC)


def _random_lines(seed: int = 7, n: int = 3000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, 60, n)
    day = rng.integers(0, 120, n)
    return pl.DataFrame(
        {
            "customer_id": [f"c{c}" for c in customer],
            "item_id": [f"i{i}" for i in rng.integers(0, 80, n)],
            "timestamp": [START + timedelta(days=int(d), hours=int(c % 24)) for c, d in zip(customer, day)],
            "quantity": np.ones(n),
            # one order per customer per day
            "order_id": [f"o{c}-{d}" for c, d in zip(customer, day)],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


def _keys(frame: pl.DataFrame) -> set[tuple]:
    return set(frame.select("customer_id", "item_id", "timestamp", "order_id").iter_rows())


def test_temporal_split_tuning_never_sees_validation_or_test_time() -> None:
    lines = _random_lines()
    plan = temporal_split(lines, test_days=20, validation_days=15)
    cutoff = lines["timestamp"].max() - timedelta(days=20)
    assert plan.tuning.train["timestamp"].max() < cutoff - timedelta(days=15)
    assert plan.tuning.test["timestamp"].min() >= cutoff - timedelta(days=15)
    assert plan.tuning.test["timestamp"].max() < cutoff
    assert plan.final.train["timestamp"].max() < cutoff
    assert plan.final.test["timestamp"].min() >= cutoff
    # Final train = tuning train + the whole validation window (before unseen filtering).
    assert plan.final.train.height == plan.tuning.train.height + plan.tuning.stats["test_lines_raw"]


def test_temporal_split_removes_and_counts_unseen_customers_and_items() -> None:
    base = _random_lines(n=500).filter(pl.col("timestamp") < START + timedelta(days=60))
    late = pl.DataFrame(
        {
            "customer_id": ["newbie", "newbie", "c1", base["customer_id"][0]],
            "item_id": ["i1", "i2", "brand-new", base["item_id"][0]],
            "timestamp": [START + timedelta(days=100)] * 4,
            "quantity": [1.0] * 4,
            "order_id": ["x1", "x1", "x2", "x3"],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    lines = pl.concat([base, late])
    plan = temporal_split(lines, test_days=10, validation_days=45)
    stats = plan.final.stats
    assert stats["unseen_customers"] == 1 and stats["unseen_customer_lines"] == 2
    assert stats["unseen_items"] == 1 and stats["unseen_item_lines"] == 1
    assert stats["test_lines"] == 1 and stats["test_lines_raw"] == 4
    assert "newbie" not in plan.final.test["customer_id"].to_list()
    assert "brand-new" not in plan.final.test["item_id"].to_list()


def test_temporal_split_with_nothing_after_cutoff_is_an_actionable_error() -> None:
    lines = _random_lines(n=200)
    with pytest.raises(DataError, match="test-days"):
        temporal_split(lines, cutoff=lines["timestamp"].max() + timedelta(days=1))


def test_next_basket_holds_out_each_customers_last_and_second_to_last_order() -> None:
    lines = _random_lines()
    plan = next_basket_split(lines)
    order_time = lines.group_by("customer_id", "order_id").agg(pl.col("timestamp").min().alias("t"))
    last = order_time.sort("t").group_by("customer_id").agg(pl.col("order_id").last().alias("last"))
    test_orders = plan.final.test.select("customer_id", "order_id").unique()
    assert test_orders.group_by("customer_id").len()["len"].max() == 1
    assert (
        test_orders.join(last, on="customer_id")["order_id"].to_list()
        == test_orders.join(last, on="customer_id")["last"].to_list()
    )

    def per_customer(frame: pl.DataFrame, how: str) -> pl.DataFrame:
        agg = pl.col("timestamp").max() if how == "max" else pl.col("timestamp").min()
        return frame.group_by("customer_id").agg(agg.alias(how))

    # Per customer: every train order is before the validation order, which is before the test order.
    tr = per_customer(plan.tuning.train, "max").join(per_customer(plan.tuning.test, "min"), on="customer_id")
    assert (tr["max"] <= tr["min"]).all()
    ft = per_customer(plan.final.train, "max").join(per_customer(plan.final.test, "min"), on="customer_id")
    assert (ft["max"] <= ft["min"]).all()


def test_next_basket_tuning_is_disjoint_from_test_orders() -> None:
    lines = _random_lines()
    plan = next_basket_split(lines)
    test_keys = _keys(plan.final.test)
    assert not test_keys & _keys(plan.tuning.train)
    assert not test_keys & _keys(plan.tuning.test)
    assert not _keys(plan.tuning.test) & _keys(plan.tuning.train)
    # Nothing is lost: final train + all test lines (scored or counted as unseen) = the input.
    stats = plan.final.stats
    assert plan.final.train.height + stats["test_lines_raw"] == lines.height


def test_next_basket_single_order_customers_are_counted_not_scored() -> None:
    lines = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c", "c"],
            "item_id": ["x", "x", "y", "x", "y", "x"],
            "timestamp": [
                START,
                START + timedelta(days=1),
                START + timedelta(days=2),
                START,
                START,
                START + timedelta(days=3),
            ],
            "order_id": ["1", "2", "3", "4", "5", "6"],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    plan = next_basket_split(lines)
    assert sorted(plan.final.test["customer_id"].to_list()) == ["a", "c"]
    assert plan.final.stats["unseen_customers"] == 1  # b: one order only
    assert plan.tuning.test["customer_id"].to_list() == ["a"]  # c has no order before its validation order
    assert plan.tuning.stats["unseen_customers"] == 1


def test_last_order_split_is_the_final_split_of_the_next_basket_protocol() -> None:
    from recsys.splits import last_order_split

    rng = np.random.default_rng(4)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = pl.DataFrame(
        {
            Columns.customer_id: [f"c{i % 40}" for i in range(600)],
            Columns.item_id: [f"i{v}" for v in rng.integers(0, 30, 600)],
            Columns.timestamp: [start + timedelta(days=int(d)) for d in rng.integers(0, 90, 600)],
            Columns.order_id: [f"o{v}" for v in rng.integers(0, 200, 600)],
        }
    )
    final, alone = next_basket_split(lines).final, last_order_split(lines)
    assert alone.train.equals(final.train) and alone.test.equals(final.test)
    assert alone.stats == final.stats
