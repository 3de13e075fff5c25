"""What a load produced: the validated frames and an account of every row read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl


class Reason:
    """Why a row was rejected. Stable strings: they appear in rejects files and ``--json`` output."""

    empty_row = "empty_row"
    ragged_row = "ragged_row"
    guest_checkout = "guest_checkout"
    missing_customer_id = "missing_customer_id"
    missing_item_id = "missing_item_id"
    missing_timestamp = "missing_timestamp"
    unparsable_timestamp = "unparsable_timestamp"
    missing_quantity = "missing_quantity"
    non_numeric_quantity = "non_numeric_quantity"
    non_finite_quantity = "non_finite_quantity"
    non_positive_quantity = "non_positive_quantity"
    missing_price = "missing_price"
    non_numeric_price = "non_numeric_price"
    non_finite_price = "non_finite_price"
    negative_price = "negative_price"
    # catalog rows
    duplicate_item_id = "duplicate_item_id"
    invalid_in_stock = "invalid_in_stock"
    non_numeric_margin = "non_numeric_margin"


@dataclass(frozen=True)
class ValidationReport:
    """Counts of one file's rows. ``rows_used + rows_rejected == rows_read`` always holds."""

    source: str
    schema: str
    rows_read: int
    rows_used: int
    rows_rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    returns: int = 0
    rejects_path: str | None = None

    def __post_init__(self) -> None:
        if self.rows_used + self.rows_rejected != self.rows_read:  # pragma: no cover - a bug, not a user error
            raise AssertionError(f"row accounting broken for {self.source}: {self}")

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object of ``centric validate``."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "reasons": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        }


@dataclass(frozen=True)
class LoadResult:
    """Validated transactions (purchases), explicit returns, an optional catalog and the report."""

    transactions: pl.DataFrame
    returns: pl.DataFrame
    catalog: pl.DataFrame | None
    report: ValidationReport
    catalog_report: ValidationReport | None = None
