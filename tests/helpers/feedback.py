"""View and click rows in the shape ``recsys.events.history.implicit_events`` returns, for the feedback tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from recsys.columns import Columns

FEEDBACK_SCHEMA = {
    Columns.customer_id: pl.String,
    Columns.item_id: pl.String,
    Columns.timestamp: pl.Datetime("us", "UTC"),
    "type": pl.String,
}


def feedback_frame(rows: Iterable[tuple[str, str, dt.datetime, str]]) -> pl.DataFrame:
    """Return ``(customer_id, item_id, timestamp, type)`` tuples as a frame of views and clicks."""
    return pl.DataFrame(list(rows), schema=FEEDBACK_SCHEMA, orient="row")
