"""Campaign audiences: the customers the arbitration assigned to one offer, best first, within a budget.

This is the second direction of the same solution: an audience is read from the decisions (never
re-scored), so a customer is in the audience exactly when the offer is among their decisions, with the
same ``expected_value`` and ``p_accept``. ``budget`` is the number of redemptions the campaign can pay
for: customers are taken by expected value while the expected redemptions (Σ p_accept) stay within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from recsys.columns import Columns
from recsys.exceptions import ConfigError

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, e.g. a customer id sent in an
# event as ``=HYPERLINK(...)``): such text is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_START = r"^[=+\-@\t\r]"


@dataclass(frozen=True)
class Audience:
    """Chosen customers (``customer_id``, ``expected_value``, ``p_accept``) and their totals."""

    offer_id: str
    customers: pl.DataFrame
    expected_redemptions: float
    expected_value: float


def select_audience(decisions: pl.DataFrame, offer_id: str, budget: float, channel: str | None = None) -> Audience:
    """Return the audience of ``offer_id`` from decision rows (any channel unless ``channel`` is given).

    Raises ``ConfigError`` for a negative budget.
    """
    if budget < 0:
        raise ConfigError(f"budget must be >= 0 (redemptions the campaign can pay for), got {budget}")
    rows = decisions.filter(pl.col("offer_id") == offer_id)
    if channel is not None:
        rows = rows.filter(pl.col(Columns.channel) == channel)
    chosen = (
        rows.group_by(Columns.customer_id)
        .agg(pl.col("expected_value").first(), pl.col("p_accept").first())
        .sort(["expected_value", Columns.customer_id], descending=[True, False])
        .filter(pl.col("p_accept").cum_sum() <= budget + 1e-9)
    )
    return Audience(
        offer_id,
        chosen.select(Columns.customer_id, "expected_value", "p_accept"),
        float(chosen.get_column("p_accept").sum()),
        float(chosen.get_column("expected_value").sum()),
    )


def write_csv(audience: Audience, out: Path | IO[bytes]) -> None:
    """Write the audience's customers as CSV to ``out`` (a path or a binary buffer): a header, then one row per
    customer, best first. A text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return) gets a leading ``'``; numbers are written as they are."""
    frame = audience.customers
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    safe = frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )
    safe.write_csv(out)
