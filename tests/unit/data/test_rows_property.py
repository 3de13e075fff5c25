"""Property: every row read is used or rejected with the reason its fault predicts; nothing is dropped."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data import load_transactions
from recsys.exceptions import DataError

IDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters='"'),
    min_size=1,
    max_size=8,
)
FAULTS = {
    None: lambda row: row,
    "missing_customer_id": lambda row: {**row, "customer_id": ""},
    "missing_item_id": lambda row: {**row, "item_id": " "},
    "missing_timestamp": lambda row: {**row, "timestamp": ""},
    "unparsable_timestamp": lambda row: {**row, "timestamp": "31/31/2024 25:61"},
    "non_numeric_quantity": lambda row: {**row, "quantity": "two"},
    "non_positive_quantity": lambda row: {**row, "quantity": "-1"},
    "non_finite_quantity": lambda row: {**row, "quantity": "NaN"},
    "negative_price": lambda row: {**row, "price": "-3.5"},
    "non_numeric_price": lambda row: {**row, "price": "€3"},
}
ROW = st.fixed_dictionaries(
    {
        "customer_id": IDS,
        "item_id": IDS,
        "timestamp": st.datetimes(
            min_value=__import__("datetime").datetime(2000, 1, 1), max_value=__import__("datetime").datetime(2030, 1, 1)
        ).map(lambda d: d.isoformat(timespec="seconds")),
        "quantity": st.integers(1, 1000).map(str),
        "price": st.decimals(0, 10_000, places=2).map(str),
        "fault": st.sampled_from(list(FAULTS)),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=40))
def test_rows_are_used_or_rejected_with_the_predicted_reason(rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["customer_id", "item_id", "timestamp", "quantity", "price"])
    writer.writeheader()
    expected: dict[int, str] = {}
    for number, row in enumerate(rows, start=1):
        fault = row.pop("fault")
        writer.writerow(FAULTS[fault](row))
        if fault is not None:
            expected[number] = fault
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tx.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        rejects = Path(folder) / "rejects.csv"
        try:
            result = load_transactions(path, rejects_path=rejects)
        except DataError as exc:
            assert len(expected) == len(rows), f"rows were usable but the file was refused: {exc}"
            return
        got = pl.read_csv(rejects, infer_schema=False)
        report = result.report
        assert report.rows_read == len(rows)
        assert report.rows_used + report.rows_rejected == report.rows_read
        assert dict(zip(got["row"].cast(int).to_list(), got["reason"].to_list(), strict=True)) == expected
        assert result.transactions.height == len(rows) - len(expected)
        used_ids = set(result.transactions["customer_id"].to_list())
        for number, row in enumerate(rows, start=1):
            if number not in expected:
                assert row["customer_id"].strip() in used_ids
