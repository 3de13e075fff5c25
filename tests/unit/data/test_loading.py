"""`load_transactions` / `load_catalog`: types, adapters, returns, catalogs, order ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from recsys.columns import Columns
from recsys.data import load_catalog, load_transactions
from recsys.exceptions import DataError

UTC_US = pl.Datetime("us", "UTC")


def _csv(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_standard_csv_gets_standard_types_and_synthesised_orders(tmp_path: Path) -> None:
    path = _csv(tmp_path, "customer_id,item_id,timestamp,quantity,price\n007,0042,2024-03-01T10:00:00+02:00,2,1.25\n")
    result = load_transactions(path)
    tx = result.transactions
    assert tx.schema[Columns.timestamp] == UTC_US
    assert tx.schema[Columns.quantity] == pl.Float64
    row = tx.row(0, named=True)
    assert row[Columns.customer_id] == "007" and row[Columns.item_id] == "0042"  # leading zeros kept
    assert row[Columns.timestamp] == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert row[Columns.amount] == pytest.approx(2.5)
    assert row[Columns.order_id] == "007@1709280000"
    assert result.catalog is None
    assert result.returns.height == 0


def test_order_id_column_is_kept_and_blank_ones_synthesised(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "customer_id,item_id,timestamp,quantity,price,order_id,channel\n"
        "a,x,2024-01-01,1,1,o1,web\na,y,2024-01-02,1,1,,\n",
    )
    tx = load_transactions(path).transactions.sort(Columns.timestamp)
    assert tx[Columns.order_id].to_list() == ["o1", "a@1704153600"]
    assert tx[Columns.channel].to_list() == ["web", None]


def test_columns_are_matched_case_insensitively_and_bom_is_ignored(tmp_path: Path) -> None:
    path = _csv(tmp_path, "\ufeffCustomer_ID, Item_Id ,TIMESTAMP,Quantity,Price\na,b,2024-01-01,1,1\n")
    assert load_transactions(path).report.rows_used == 1


def test_gzip_and_parquet_inputs(tmp_path: Path) -> None:
    import gzip

    text = "customer_id,item_id,timestamp,quantity,price\na,b,2024-01-01 10:00:00,1,1\n"
    gz = tmp_path / "tx.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert load_transactions(gz).report.rows_used == 1
    parquet = tmp_path / "tx.parquet"
    pl.DataFrame(
        {
            "customer_id": [1, None],
            "item_id": ["b", "c"],
            "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 2)],
            "quantity": [1, 2],
            "price": [1.0, -1.0],
        }
    ).write_parquet(parquet)
    result = load_transactions(parquet)
    assert result.report.rows_used == 1
    assert result.report.reasons == {"missing_customer_id": 1}
    assert result.transactions[Columns.customer_id].to_list() == ["1"]


def test_online_retail_adapter(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        (
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
            "C536379,85123A,WHITE HANGING HEART,-2,2010-12-01 09:41:00,2.55,17850.0,United Kingdom\n"
            "536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,,United Kingdom\n"
            "536367,84879,BIRD ORNAMENT,-3,2010-12-01 08:34:00,1.69,13047.0,United Kingdom\n"
            '536368,00123,"SET, OF 3",1,12/1/2010 8:34,1.0,13047.0,United Kingdom\n'
        ),
    )
    result = load_transactions(path, schema="online-retail")
    assert result.report.reasons == {"guest_checkout": 1, "non_positive_quantity": 1}
    assert result.report.rows_used == 3 and result.report.returns == 1
    ret = result.returns.row(0, named=True)
    assert ret[Columns.quantity] == 2 and ret[Columns.order_id] == "C536379" and ret[Columns.customer_id] == "17850"
    assert set(result.transactions[Columns.item_id]) == {"85123A", "00123"}
    assert result.transactions.filter(pl.col(Columns.item_id) == "00123")[Columns.timestamp].item() == datetime(
        2010, 12, 1, 8, 34, tzinfo=UTC
    )
    names = dict(result.catalog.select(Columns.item_id, Columns.name).iter_rows())
    assert names["85123A"] == "WHITE HANGING HEART" and names["00123"] == "SET, OF 3"


def test_complete_journey_adapter_uses_products_beside_it(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "household_id": [1, 1, 2],
            "store_id": [10, 10, 11],
            "basket_id": [100, 100, 101],
            "product_id": [5, 6, 5],
            "quantity": [2, 0, 1],
            "sales_value": [3.0, 0.0, 1.5],
            "transaction_timestamp": [datetime(2017, 1, 1, 9)] * 3,
        }
    ).write_parquet(tmp_path / "transactions.parquet")
    pl.DataFrame(
        {
            "product_id": [5, 6],
            "department": ["PRODUCE", "DELI"],
            "brand": ["National", "Private"],
            "product_category": ["BANANAS", None],
            "product_type": ["BANANAS", "CHEESE"],
            "package_size": ["1 LB", None],
        }
    ).write_parquet(tmp_path / "products.parquet")
    result = load_transactions(tmp_path / "transactions.parquet", schema="complete-journey")
    assert result.report.reasons == {"non_positive_quantity": 1}
    tx = result.transactions.sort(Columns.customer_id)
    assert tx[Columns.price].to_list() == [1.5, 1.5]  # sales_value / quantity
    assert tx[Columns.order_id].to_list() == ["100", "101"] and tx[Columns.store_id].to_list() == ["10", "11"]
    assert result.catalog.row(0, named=True)[Columns.category] == "BANANAS"


def test_load_catalog_rejects_bad_rows_and_fills_defaults(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "item_id,name,category,price,in_stock,margin\n"
        "a,Apple,fruit,1.0,yes,0.3\nb,,,2,no,\na,Dup,fruit,1,true,\nc,C,x,-1,true,\nd,D,x,1,maybe,\n",
        name="catalog.csv",
    )
    loaded = load_catalog(path)
    assert loaded.report.reasons == {"duplicate_item_id": 1, "negative_price": 1, "invalid_in_stock": 1}
    rows = {r[Columns.item_id]: r for r in loaded.catalog.iter_rows(named=True)}
    assert rows["b"][Columns.name] == "b" and rows["b"][Columns.category] == "uncategorised"
    assert rows["b"][Columns.in_stock] is False and rows["a"][Columns.margin] == pytest.approx(0.3)


def test_catalog_option_is_loaded_with_transactions(tmp_path: Path) -> None:
    tx = _csv(tmp_path, "customer_id,item_id,timestamp,quantity,price\na,b,2024-01-01,1,1\n")
    cat = _csv(tmp_path, "item_id,name,category,price\nb,Bread,bakery,1\n", name="catalog.csv")
    result = load_transactions(tx, catalog=cat)
    assert result.catalog[Columns.category].to_list() == ["bakery"]
    with pytest.raises(DataError, match="catalog column"):
        load_transactions(tx, catalog=tx)


def test_wrong_schema_suggests_the_right_one(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,A,x,1,2010-12-01 08:26:00,1,1,UK\n",
    )
    with pytest.raises(DataError, match="--schema online-retail"):
        load_transactions(path)


def test_a_quoted_field_spanning_lines_is_read(tmp_path: Path) -> None:
    path = _csv(
        tmp_path, 'customer_id,item_id,timestamp,quantity,price\na,"two\nlines",2024-01-01,1,1\nb,c,2024-01-01,1,1\n'
    )
    result = load_transactions(path)
    assert result.report.rows_read == 2 and result.report.rows_used == 2
