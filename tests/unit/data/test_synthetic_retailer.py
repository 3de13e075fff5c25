"""The synthetic retailer of the scale benchmark: the standard schema, the sizes asked, and a realistic skew."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.synthetic_retailer import SIZES, Spec, generate, spec_for
from recsys.data import load_transactions

SPEC = Spec(customers=2_000, items=800, seed=3)


@pytest.fixture(scope="module")
def retailer(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    info = generate(SPEC, tmp_path_factory.mktemp("retailer"))
    return info, pl.read_parquet(info["transactions"]), pl.read_parquet(info["catalog"])


def test_files_pass_validation_in_the_standard_schema_with_no_rejects(retailer) -> None:
    info, tx, _ = retailer
    assert tx.columns == ["customer_id", "item_id", "timestamp", "quantity", "price", "order_id", "store_id"]
    result = load_transactions(info["transactions"], schema="standard", catalog=info["catalog"])
    assert result.report.rows_rejected == 0
    assert result.report.rows_used == tx.height == info["lines"]
    assert result.catalog is not None and result.catalog.height == SPEC.items


def test_sizes_match_the_spec(retailer) -> None:
    _, tx, catalog = retailer
    assert tx.get_column("customer_id").n_unique() == SPEC.customers  # every customer has at least one basket
    assert tx.get_column("item_id").is_in(catalog.get_column("item_id").implode()).all()
    assert catalog.get_column("category").n_unique() == SPEC.categories
    lines_per_customer = tx.height / SPEC.customers
    assert 17 <= lines_per_customer <= 23  # about 20 on average, as at 1M customers × 20M lines


def test_named_sizes_are_the_issue_sizes() -> None:
    assert spec_for("1m") == Spec(customers=1_000_000, items=50_000)
    assert [spec_for(s).customers for s in SIZES] == [10_000, 100_000, 1_000_000]
    with pytest.raises(ValueError, match="choose from 10k, 100k, 1m"):
        spec_for("2m")


def test_item_popularity_is_heavily_skewed(retailer) -> None:
    _, tx, _ = retailer
    counts = np.sort(tx.get_column("item_id").value_counts().get_column("count").to_numpy())[::-1]
    top_share = counts[: SPEC.items // 100].sum() / counts.sum()
    assert top_share > 0.25  # the top 1 % of items take over a quarter of the lines (uniform would be 1 %)


def test_customers_are_heavy_tailed(retailer) -> None:
    _, tx, _ = retailer
    baskets = tx.group_by("customer_id").agg(pl.col("order_id").n_unique()).get_column("order_id").to_numpy()
    assert baskets.max() > 8 * np.median(baskets)
    top_decile = np.sort(baskets)[::-1][: SPEC.customers // 10].sum() / baskets.sum()
    assert top_decile > 0.3


def test_baskets_have_several_lines_over_two_years(retailer) -> None:
    _, tx, _ = retailer
    per_basket = tx.group_by("order_id").len().get_column("len")
    assert 2.0 <= per_basket.mean() <= 3.0
    assert tx.group_by("order_id").agg(pl.col("customer_id").n_unique()).get_column("customer_id").max() == 1
    span = tx.get_column("timestamp").max() - tx.get_column("timestamp").min()
    assert 600 <= span.days <= 730


def test_customers_repeat_their_categories_and_items(retailer) -> None:
    _, tx, catalog = retailer
    lines = tx.join(catalog.select("item_id", "category"), on="item_id")
    # share of each customer's lines in their single most bought category, over customers with 20+ lines
    top = (
        lines.group_by("customer_id", "category")
        .len()
        .group_by("customer_id")
        .agg(pl.col("len").max().alias("top"), pl.col("len").sum().alias("n"))
        .filter(pl.col("n") >= 20)
    )
    assert (top.get_column("top") / top.get_column("n")).median() > 0.2  # 400 categories would give ~0.01 at random
    repeat = lines.group_by("customer_id", "item_id").len().filter(pl.col("len") >= 2).height
    assert repeat > SPEC.customers  # items bought again by the same customer


def test_same_seed_gives_the_same_files(tmp_path: Path) -> None:
    small = Spec(customers=200, items=100, seed=7)
    a, b = generate(small, tmp_path / "a"), generate(small, tmp_path / "b")
    assert pl.read_parquet(a["transactions"]).equals(pl.read_parquet(b["transactions"]))
    other = generate(Spec(customers=200, items=100, seed=8), tmp_path / "c")
    assert not pl.read_parquet(a["transactions"]).equals(pl.read_parquet(other["transactions"]))
