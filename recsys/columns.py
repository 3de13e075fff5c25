"""Column-name constants shared by every frame that crosses a module boundary.

Use ``pl.col(Columns.customer_id)`` rather than string literals so a rename is one edit.
"""

from __future__ import annotations


class Columns:
    """Standard transaction and catalog columns (see DESIGN.md, Contracts)."""

    # transactions
    customer_id = "customer_id"
    item_id = "item_id"
    timestamp = "timestamp"
    quantity = "quantity"
    price = "price"
    order_id = "order_id"
    channel = "channel"
    store_id = "store_id"
    # derived on load
    amount = "amount"  # quantity * price, in currency units (float64 for analytics)
    # catalog
    name = "name"
    category = "category"
    margin = "margin"
    in_stock = "in_stock"
    # rejects
    row = "row"  # 1-based data row number in the source file (header excluded)
    reason = "reason"
    # internal indices: never leave the process
    customer_idx = "customer_idx"
    item_idx = "item_idx"
    # recommendation outputs
    score = "score"
    rank = "rank"
    source = "source"


TRANSACTION_REQUIRED = (
    Columns.customer_id,
    Columns.item_id,
    Columns.timestamp,
    Columns.quantity,
    Columns.price,
)
TRANSACTION_OPTIONAL = (Columns.order_id, Columns.channel, Columns.store_id)
CATALOG_REQUIRED = (Columns.item_id, Columns.name, Columns.category, Columns.price)
CATALOG_OPTIONAL = (Columns.margin, Columns.in_stock)


class ProfileColumns:
    """Columns of the customer-profile table (``profiles.parquet``), one row per customer.

    Produced by ``recsys.analytics``; read by publishing, serving and next-best-action.
    """

    customer_id = "customer_id"
    first_purchase = "first_purchase"  # datetime UTC
    last_purchase = "last_purchase"  # datetime UTC
    orders = "orders"  # distinct purchase periods (int)
    frequency = "frequency"  # repeat purchase periods, BTYD convention (int)
    recency = "recency"  # time between first and last purchase, in time units (float)
    T = "T"  # time between first purchase and the end of calibration (float)
    monetary = "monetary"  # mean value of repeat purchases (float, currency)
    total_spend = "total_spend"  # float, currency
    r_score = "r_score"  # 1..5
    f_score = "f_score"  # 1..5
    m_score = "m_score"  # 1..5
    segment = "segment"  # RFM segment name (str)
    p_alive = "p_alive"  # float in [0, 1]
    churn_risk = "churn_risk"  # 1 - p_alive
    expected_purchases = "expected_purchases"  # over the CLV horizon
    clv = "clv"  # float, currency, discounted margin over the horizon
    value_tier = "value_tier"  # "top_1", "top_10", "rest"
    lifecycle = "lifecycle"  # prospect|new|active|at_risk|lapsed|reactivated
    days_since_last_purchase = "days_since_last_purchase"  # int
    top_categories = "top_categories"  # list[str], most-bought categories first
