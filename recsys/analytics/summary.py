"""RFM summary in the BTYD convention, and the calibration/holdout splitter.

Conventions (Fader, Hardie & Lee 2005; the same as the CDNOW summary files):

* purchases are bucketed into **periods** of one day (UTC); several purchases on the same day count once;
* ``frequency`` = number of distinct purchase days − 1 (repeat purchases);
* ``recency`` = time from the first to the last purchase day, ``T`` = time from the first purchase day to the
  calibration end day, both in the chosen unit (``day``, or ``week`` = days / 7);
* ``monetary`` = mean value of the repeat purchase days (the first day's spend is excluded), 0 without repeats.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from recsys.columns import Columns, ProfileColumns
from recsys.exceptions import DataError

P = ProfileColumns
UNIT_DAYS = {"day": 1.0, "week": 7.0}
_DAY = "_day"
# Extra summary columns (not part of the published profile).
PREVIOUS_PURCHASE = "previous_purchase"  # the purchase day before the last one (null with one purchase day)
FREQUENCY_HOLDOUT = "frequency_holdout"
MONETARY_HOLDOUT = "monetary_holdout"
DURATION_HOLDOUT = "duration_holdout"


def unit_days(time_unit: str) -> float:
    """Return the length of ``time_unit`` in days; raises ``DataError`` for an unknown unit."""
    try:
        return UNIT_DAYS[time_unit]
    except KeyError:
        raise DataError(f"time unit {time_unit!r} is not supported: use one of {sorted(UNIT_DAYS)}") from None


def as_utc_day(value: date | datetime | str) -> datetime:
    """Return midnight UTC of the given day (a date, an aware/naive datetime or an ISO string)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DataError(f"date {value!r} is not ISO 8601 (use YYYY-MM-DD)") from None
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        value = value.date()
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _daily(transactions: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """One row per customer × purchase day with the day's spend."""
    lf = transactions.lazy()
    ts = pl.col(Columns.timestamp)
    return (
        lf.with_columns(ts.dt.convert_time_zone("UTC").dt.truncate("1d").alias(_DAY))
        .group_by(Columns.customer_id, _DAY)
        .agg(pl.col(Columns.amount).sum())
    )


def data_end(transactions: pl.DataFrame) -> datetime:
    """Return midnight UTC of the last transaction day; raises ``DataError`` when there are no transactions."""
    last = transactions.select(pl.col(Columns.timestamp).max()).item()
    if last is None:
        raise DataError("no transactions to analyse: the transactions frame is empty")
    return as_utc_day(last)


def rfm_summary(
    transactions: pl.DataFrame | pl.LazyFrame,
    calibration_end: date | datetime | str | None = None,
    *,
    time_unit: str = "week",
) -> pl.DataFrame:
    """Return one row per customer who bought on or before ``calibration_end`` (default: the last data day).

    Columns: ``customer_id``, ``first_purchase``, ``last_purchase``, ``previous_purchase``, ``orders`` (purchase days),
    ``frequency``, ``recency``, ``T``, ``monetary``, ``total_spend`` (calibration spend). Raises ``DataError`` on an
    unknown time unit or empty data.
    """
    scale = unit_days(time_unit)
    daily = _daily(transactions)
    if calibration_end is None:
        end = daily.select(pl.col(_DAY).max()).collect().item()
        if end is None:
            raise DataError("no transactions to analyse: the transactions frame is empty")
    else:
        end = as_utc_day(calibration_end)
    day = pl.col(_DAY)
    out = (
        daily.filter(day <= end)
        .sort(Columns.customer_id, _DAY)
        .group_by(Columns.customer_id)
        .agg(
            day.first().alias(P.first_purchase),
            day.last().alias(P.last_purchase),
            day.reverse().slice(1, 1).first().alias(PREVIOUS_PURCHASE),
            pl.len().cast(pl.Int64).alias(P.orders),
            pl.col(Columns.amount).sum().alias(P.total_spend),
            pl.col(Columns.amount).first().alias("_first_amount"),
        )
        .with_columns(
            (pl.col(P.orders) - 1).alias(P.frequency),
            ((pl.col(P.last_purchase) - pl.col(P.first_purchase)).dt.total_days() / scale).alias(P.recency),
            ((pl.lit(end) - pl.col(P.first_purchase)).dt.total_days() / scale).alias(P.T),
        )
        .with_columns(
            pl.when(pl.col(P.frequency) > 0)
            .then((pl.col(P.total_spend) - pl.col("_first_amount")) / pl.col(P.frequency))
            .otherwise(0.0)
            .alias(P.monetary)
        )
        .drop("_first_amount")
        .sort(Columns.customer_id)
        .collect()
    )
    if out.height == 0:
        raise DataError(f"no customer bought on or before the calibration end {end.date()}")
    return out


def calibration_holdout(
    transactions: pl.DataFrame | pl.LazyFrame,
    calibration_end: date | datetime | str,
    observation_end: date | datetime | str | None = None,
    *,
    time_unit: str = "week",
) -> pl.DataFrame:
    """Return :func:`rfm_summary` at ``calibration_end`` plus the holdout behaviour of the same customers.

    Holdout = days after the calibration end up to ``observation_end`` (default: the last data day):
    ``frequency_holdout`` (purchase days), ``monetary_holdout`` (mean spend per purchase day, 0 without any),
    ``duration_holdout`` (length of the holdout in time units). Raises ``DataError`` when the holdout is empty.
    """
    scale = unit_days(time_unit)
    cal = as_utc_day(calibration_end)
    daily = _daily(transactions)
    obs = daily.select(pl.col(_DAY).max()).collect().item() if observation_end is None else as_utc_day(observation_end)
    if obs is None or obs <= cal:
        raise DataError(f"the holdout period is empty: observation end {obs} is not after calibration end {cal.date()}")
    summary = rfm_summary(transactions, cal, time_unit=time_unit)
    day = pl.col(_DAY)
    holdout = (
        daily.filter((day > cal) & (day <= obs))
        .group_by(Columns.customer_id)
        .agg(pl.len().cast(pl.Int64).alias(FREQUENCY_HOLDOUT), pl.col(Columns.amount).mean().alias(MONETARY_HOLDOUT))
        .collect()
    )
    return summary.join(holdout, on=Columns.customer_id, how="left").with_columns(
        pl.col(FREQUENCY_HOLDOUT).fill_null(0),
        pl.col(MONETARY_HOLDOUT).fill_null(0.0),
        pl.lit((obs - cal).days / scale).alias(DURATION_HOLDOUT),
    )
