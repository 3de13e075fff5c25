"""Evaluation protocols by name: which split a ``centric evaluate --protocol`` run uses."""

from __future__ import annotations

import polars as pl

from recsys.splits import SplitPlan, next_basket_split, temporal_split

PROTOCOLS: tuple[str, ...] = ("temporal", "next-basket")


def make_plan(
    transactions: pl.DataFrame, protocol: str, *, test_days: float = 30, validation_days: float | None = None
) -> SplitPlan:
    """Return the tuning/final :class:`~recsys.splits.SplitPlan` of ``protocol``.

    ``temporal``: the last ``test_days`` are test, the ``validation_days`` before them validation.
    ``next-basket``: each customer's last order is test, the one before it validation.
    Raises ``ValueError`` for an unknown protocol and ``DataError`` when the data cannot be split.
    """
    if protocol == "temporal":
        return temporal_split(transactions, test_days=test_days, validation_days=validation_days)
    if protocol == "next-basket":
        return next_basket_split(transactions)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
