"""Train / validation / test splits of transaction lines, built so that nothing leaks from test into tuning.

Every splitter returns a :class:`SplitPlan` with two :class:`Split` s:

- ``tuning`` — train on lines *before* the validation part, score on the validation part. Hyperparameter search
  and blend weights only ever see this split.
- ``final`` — train on train + validation, score on the test part. Models are refit here with the tuned
  parameters; the test part is never seen before this step.

Test (and validation) lines whose customer or item does not occur in that split's train part cannot be
scored by any model trained on it: they are removed from the scored part and counted in ``Split.stats``
(``unseen_customers``, ``unseen_customer_lines``, ``unseen_items``, ``unseen_item_lines``), so a report can say
exactly what was left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from recsys.columns import Columns
from recsys.exceptions import DataError

_ORDER_TIME = "_order_time"
_ORDER_RANK = "_order_rank"


@dataclass(frozen=True)
class Split:
    """One train/test pair of transaction frames (same columns as the input)."""

    name: str
    train: pl.DataFrame
    test: pl.DataFrame
    stats: dict[str, int | str] = field(default_factory=dict)
    # Per scored-or-not known customer: distinct test items, counting items unseen in train (``customer_id``,
    # ``test_items``). The next-basket metrics divide by this (as TIFU-KNN's and TAIW's code do), not by the
    # items a model could have scored.
    test_sizes: pl.DataFrame | None = None


@dataclass(frozen=True)
class SplitPlan:
    """The ``tuning`` split (train before validation → validation) and the ``final`` split (train+validation → test)."""

    protocol: str
    tuning: Split
    final: Split


def temporal_split(
    transactions: pl.DataFrame,
    *,
    test_days: float = 30,
    validation_days: float | None = None,
    cutoff: datetime | None = None,
) -> SplitPlan:
    """Split at a global time cutoff ``T``: test = lines at or after ``T``, validation = the last window before ``T``.

    ``T`` defaults to the newest timestamp minus ``test_days``; the validation window is ``[T - validation_days, T)``
    (``validation_days`` defaults to ``test_days``). Raises ``DataError`` when a part would be empty.
    """
    _require(transactions, (Columns.customer_id, Columns.item_id, Columns.timestamp))
    if transactions.is_empty():
        raise DataError("cannot split an empty transactions frame")
    if test_days <= 0 or (validation_days is not None and validation_days <= 0):
        raise ValueError("test_days and validation_days must be > 0")
    ts = pl.col(Columns.timestamp)
    newest: datetime = transactions.get_column(Columns.timestamp).max()  # type: ignore[assignment]
    if cutoff is None:
        cutoff = newest - timedelta(days=test_days)
    elif cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware (UTC)")
    validation_start = cutoff - timedelta(days=validation_days if validation_days is not None else test_days)

    before_cutoff = transactions.filter(ts < cutoff)
    test = transactions.filter(ts >= cutoff)
    tuning_train = before_cutoff.filter(ts < validation_start)
    validation = before_cutoff.filter(ts >= validation_start)
    for label, part in (("train (before validation)", tuning_train), ("validation", validation), ("test", test)):
        if part.is_empty():
            raise DataError(
                f"temporal split: the {label} part is empty (cutoff {cutoff:%Y-%m-%d}, "
                f"validation from {validation_start:%Y-%m-%d}); choose a smaller --test-days"
            )
    when = {"cutoff": cutoff.isoformat(), "validation_start": validation_start.isoformat()}
    # each split's "cutoff" is where its own test part starts: recency weights of the tuning fit are taken there
    tuning_when = {"cutoff": validation_start.isoformat(), "validation_start": validation_start.isoformat()}
    return SplitPlan(
        protocol="temporal",
        tuning=_make_split("tuning", tuning_train, validation, tuning_when),
        final=_make_split("final", before_cutoff, test, when),
    )


def next_basket_split(transactions: pl.DataFrame) -> SplitPlan:
    """Hold out each customer's last order as test and the second-to-last as validation.

    Orders are ``order_id`` groups per customer (without an ``order_id`` column, lines with the same timestamp),
    ordered by their first timestamp. Customers with a single order have no history and are not scored
    (counted as ``unseen_customers``). Each split is per customer: a customer's validation and test orders come
    after all of that customer's training orders; tuning never sees any validation or test order.
    Raises ``DataError`` when no customer has two orders.
    """
    ranked = _ranked_orders(transactions)
    rank = pl.col(_ORDER_RANK)
    final = _last_order_split(ranked)
    tuning_train = ranked.filter(rank >= 3).drop(_ORDER_RANK)
    if tuning_train.is_empty():
        raise DataError("next-basket split: no customer has three or more orders, so there is no validation split")
    validation = ranked.filter(rank == 2).drop(_ORDER_RANK)
    return SplitPlan(
        protocol="next-basket",
        tuning=_make_split("tuning", tuning_train, validation, {}),
        final=final,
    )


def last_order_split(transactions: pl.DataFrame) -> Split:
    """The ``final`` split of :func:`next_basket_split` alone: each customer's last order held out, trained on the
    orders before it. Cheaper when the tuning split is not needed (``centric train`` tunes on this one). Raises
    ``DataError`` when no customer has two orders."""
    return _last_order_split(_ranked_orders(transactions))


def _ranked_orders(transactions: pl.DataFrame) -> pl.DataFrame:
    """The lines with ``_ORDER_RANK``: 1 for the customer's last order, 2 for the one before, …"""
    _require(transactions, (Columns.customer_id, Columns.item_id, Columns.timestamp))
    order_key = Columns.order_id if Columns.order_id in transactions.columns else Columns.timestamp
    cust = pl.col(Columns.customer_id)
    orders = (
        transactions.group_by(Columns.customer_id, order_key)
        .agg(pl.col(Columns.timestamp).min().alias(_ORDER_TIME))
        .with_columns(
            # Rank 1 = the last order; ties on time broken by the order key so the result is deterministic.
            pl.struct(_ORDER_TIME, pl.col(order_key).cast(pl.String))
            .rank(method="ordinal", descending=True)
            .over(cust)
            .alias(_ORDER_RANK)
        )
        .drop(_ORDER_TIME)
    )
    return transactions.join(orders, on=[Columns.customer_id, order_key], how="left")


def _last_order_split(ranked: pl.DataFrame) -> Split:
    rank = pl.col(_ORDER_RANK)
    final_train = ranked.filter(rank >= 2).drop(_ORDER_RANK)
    if final_train.is_empty():
        raise DataError("next-basket split: no customer has two or more orders, so nothing can be held out")
    test = ranked.filter(rank == 1).drop(_ORDER_RANK)
    return _make_split("final", final_train, test, {})


def _make_split(name: str, train: pl.DataFrame, test: pl.DataFrame, extra: dict[str, str]) -> Split:
    """Remove test lines of customers/items unseen in ``train`` and count them."""
    seen_customers = train.select(Columns.customer_id).unique()
    seen_items = train.select(Columns.item_id).unique()
    known_customer = test.join(seen_customers, on=Columns.customer_id, how="semi")
    cold_customers = test.join(seen_customers, on=Columns.customer_id, how="anti")
    scored = known_customer.join(seen_items, on=Columns.item_id, how="semi")
    cold_items = known_customer.join(seen_items, on=Columns.item_id, how="anti")
    stats: dict[str, int | str] = {
        "train_lines": train.height,
        "train_customers": seen_customers.height,
        "train_items": seen_items.height,
        "test_lines_raw": test.height,
        "test_lines": scored.height,
        "test_customers": scored.get_column(Columns.customer_id).n_unique(),
        "unseen_customers": cold_customers.get_column(Columns.customer_id).n_unique(),
        "unseen_customer_lines": cold_customers.height,
        "unseen_items": cold_items.get_column(Columns.item_id).n_unique(),
        "unseen_item_lines": cold_items.height,
        **extra,
    }
    sizes = known_customer.group_by(Columns.customer_id).agg(pl.col(Columns.item_id).n_unique().alias("test_items"))
    return Split(name=name, train=train, test=scored, stats=stats, test_sizes=sizes)


def _require(frame: pl.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"transactions frame is missing column(s) {missing}; expected the standard schema")
