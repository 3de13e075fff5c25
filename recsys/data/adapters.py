"""Map a real file layout onto the standard transactions schema.

An adapter names the source columns it needs, renames them onto standard names, and may add two
columns: ``_return`` (the line is an explicit return) and ``_pre_reason`` (a reject reason decided
from the layout itself, e.g. a guest checkout). ``post`` fixes values after parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from recsys.columns import TRANSACTION_OPTIONAL, TRANSACTION_REQUIRED, Columns
from recsys.data.parsing import US_FORMATS
from recsys.data.report import Reason
from recsys.exceptions import DataError

RETURN = "_return"
PRE_REASON = "_pre_reason"


def _identity(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame


@dataclass(frozen=True)
class Adapter:
    """How one layout maps onto the standard schema."""

    name: str
    required: tuple[str, ...]  # source column names (matched case-insensitively)
    optional: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)  # source name -> standard name
    pre: Callable[[pl.LazyFrame], pl.LazyFrame] = _identity  # on raw columns, before renaming
    post: Callable[[pl.LazyFrame], pl.LazyFrame] = _identity  # on parsed standard columns
    timestamp_formats: tuple[str, ...] = ()
    channel: str | None = None
    describe: str = ""


def _online_retail_pre(frame: pl.LazyFrame) -> pl.LazyFrame:
    invoice = pl.col("InvoiceNo").cast(pl.String).str.strip_chars()
    customer = pl.col("CustomerID").cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "")
    return frame.with_columns(
        invoice.str.starts_with("C").fill_null(False).alias(RETURN),
        customer.alias("CustomerID"),
        pl.when(customer.str.len_bytes().fill_null(0) == 0).then(pl.lit(Reason.guest_checkout)).alias(PRE_REASON),
    )


def _online_retail_post(frame: pl.LazyFrame) -> pl.LazyFrame:
    # A cancellation line carries a negative quantity; as a return it is the positive amount given back.
    quantity = pl.col(Columns.quantity)
    return frame.with_columns(pl.when(pl.col(RETURN)).then(quantity.abs()).otherwise(quantity).alias(Columns.quantity))


def _complete_journey_post(frame: pl.LazyFrame) -> pl.LazyFrame:
    # sales_value is what the line cost; the standard price is per unit.
    quantity = pl.col(Columns.quantity)
    price = pl.when(quantity > 0).then(pl.col(Columns.price) / quantity).otherwise(pl.col(Columns.price))
    return frame.with_columns(price.alias(Columns.price))


ADAPTERS: dict[str, Adapter] = {
    "standard": Adapter(
        name="standard",
        required=TRANSACTION_REQUIRED,
        optional=TRANSACTION_OPTIONAL,
        describe="customer_id, item_id, timestamp, quantity, price (+ order_id, channel, store_id)",
    ),
    "online-retail": Adapter(
        name="online-retail",
        required=("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"),
        optional=("Description", "Country"),
        rename={
            "CustomerID": Columns.customer_id,
            "StockCode": Columns.item_id,
            "InvoiceDate": Columns.timestamp,
            "Quantity": Columns.quantity,
            "UnitPrice": Columns.price,
            "InvoiceNo": Columns.order_id,
        },
        pre=_online_retail_pre,
        post=_online_retail_post,
        timestamp_formats=US_FORMATS,
        channel="online",
        describe="UCI Online Retail: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, "
        "CustomerID, Country",
    ),
    "complete-journey": Adapter(
        name="complete-journey",
        required=("household_id", "product_id", "transaction_timestamp", "quantity", "sales_value"),
        optional=("basket_id", "store_id"),
        rename={
            "household_id": Columns.customer_id,
            "product_id": Columns.item_id,
            "transaction_timestamp": Columns.timestamp,
            "quantity": Columns.quantity,
            "sales_value": Columns.price,
            "basket_id": Columns.order_id,
            "store_id": Columns.store_id,
        },
        post=_complete_journey_post,
        channel="store",
        describe="The Complete Journey transactions: household_id, store_id, basket_id, product_id, quantity, "
        "sales_value, …",
    ),
}


def adapter_for(name: str) -> Adapter:
    """The adapter called ``name``; raises ``DataError`` listing the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise DataError(f"--schema {name!r}: unknown layout — choose one of: {', '.join(ADAPTERS)}") from None


def guess_schema(columns: tuple[str, ...]) -> str | None:
    """The adapter whose required columns are all present (case-insensitively), if exactly one matches."""
    lower = {name.lower() for name in columns}
    hits = [a.name for a in ADAPTERS.values() if all(c.lower() in lower for c in a.required)]
    return hits[0] if len(hits) == 1 else None
