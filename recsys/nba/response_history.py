"""Offer response history in one standard schema: who was shown which offer when, and what they redeemed.

Every source (campaign files, The Complete Journey, the service's own logged events) is turned into a
:class:`ResponseHistory`; the propensity fit reads only this. The schema (documented in
``docs/offers-learning.md``):

* **exposures** — ``customer_id`` (str), ``offer_id`` (str), ``channel`` (str, optional), ``start``
  (datetime, the decision time), ``end`` (datetime, optional: when the offer stopped being redeemable);
* **outcomes** — ``customer_id``, ``offer_id``, ``timestamp`` (a redemption);
* **offer_items** (optional) — ``offer_id``, ``item_id``: the products an offer is about;
* **offer_kinds** (optional) — ``offer_id``, ``kind``.

An exposure is labelled *accepted* when the customer redeemed the offer at or after ``start`` and before
``end`` (or before ``start`` + the attribution window when ``end`` is missing). A fit at a validation cut
reads the label as it stood at the cut (:func:`labels_at`), so that no later redemption labels a training
exposure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import DataError

EXPOSURE_REQUIRED = ("customer_id", "offer_id", "start")
EXPOSURE_OPTIONAL = ("channel", "end")
OUTCOME_REQUIRED = ("customer_id", "offer_id", "timestamp")
DEFAULT_WINDOW_DAYS = 14
_TS = pl.Datetime("us", "UTC")


def _empty(columns: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(schema=columns)


@dataclass(frozen=True)
class ResponseHistory:
    """Exposures, outcomes and (optional) offer items and kinds, typed as the module docstring says."""

    exposures: pl.DataFrame
    outcomes: pl.DataFrame
    offer_items: pl.DataFrame = field(default_factory=lambda: _empty({"offer_id": pl.String, "item_id": pl.String}))
    offer_kinds: pl.DataFrame = field(default_factory=lambda: _empty({"offer_id": pl.String, "kind": pl.String}))
    source: str = "history"


def _as_time(frame: pl.DataFrame, column: str, where: str) -> pl.Expr:
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        expr = pl.col(column)
        return expr.dt.replace_time_zone("UTC") if dtype.time_zone is None else expr.dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return pl.col(column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype == pl.String:
        return pl.col(column).str.to_datetime(time_zone="UTC", strict=False)
    raise DataError(f"{where}: column '{column}' must be a date or datetime, got {dtype}")


def utc_times(frame: pl.DataFrame, column: str, where: str) -> pl.Series:
    """Return ``frame[column]`` as UTC datetimes (null where empty or unreadable); raises ``DataError`` for a
    column that is not a date, datetime or text."""
    return frame.select(_as_time(frame, column, where).cast(_TS)).to_series()


def _checked(frame: pl.DataFrame, required: tuple[str, ...], times: tuple[str, ...], where: str) -> pl.DataFrame:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found {frame.columns}")
    typed = frame.with_columns(
        *[pl.col(c).cast(pl.String) for c in ("customer_id", "offer_id", "channel") if c in frame.columns],
        *[_as_time(frame, c, where).cast(_TS).alias(c) for c in times if c in frame.columns],
    )
    for column in (*required, *(t for t in times if t in frame.columns and t not in required)):
        if column in required:
            bad = typed.with_row_index("row", offset=1).filter(pl.col(column).is_null())
        else:  # an optional time may be empty, but a value that failed to parse is an error
            bad = typed.with_row_index("row", offset=1).filter(
                pl.col(column).is_null() & frame.get_column(column).is_not_null()
            )
        if bad.height:
            rows = bad.get_column("row").head(5).to_list()
            value = frame.get_column(column)[rows[0] - 1]
            raise DataError(
                f"{where}: {bad.height:,} row(s) have an empty or unreadable '{column}' (rows {rows}, first value "
                f"{value!r}); fix or drop them — times are ISO 8601, ids non-empty"
            )
    return typed


def exposures_frame(frame: pl.DataFrame, where: str = "exposures") -> pl.DataFrame:
    """Return exposures validated and typed; raises ``DataError`` naming ``where``, the rows and the column."""
    typed = _checked(frame, EXPOSURE_REQUIRED, ("start", "end"), where)
    for column, dtype in (("channel", pl.String), ("end", _TS)):
        if column not in typed.columns:
            typed = typed.with_columns(pl.lit(None, dtype=dtype).alias(column))
    # an end at or before the start is a window no redemption can fall in: every such exposure would be labelled
    # declined, silently
    bad = typed.with_row_index("row", offset=1).filter(pl.col("end") <= pl.col("start"))
    if bad.height:
        first, rows = bad.row(0, named=True), bad.get_column("row").head(5).to_list()
        raise DataError(
            f"{where}: {bad.height:,} row(s) end at or before they start (rows {rows}, first: start "
            f"{first['start']:%Y-%m-%d %H:%M}, end {first['end']:%Y-%m-%d %H:%M}); the end is when "
            "the offer stopped being redeemable: fix it or leave it empty (the attribution window then applies)"
        )
    return typed.select("customer_id", "offer_id", "channel", "start", "end")


def outcomes_frame(frame: pl.DataFrame, where: str = "outcomes") -> pl.DataFrame:
    """Return outcomes (redemptions) validated and typed; raises ``DataError`` as :func:`exposures_frame`."""
    return _checked(frame, OUTCOME_REQUIRED, ("timestamp",), where).select(OUTCOME_REQUIRED)


def label_exposures(history: ResponseHistory, window_days: int = DEFAULT_WINDOW_DAYS) -> pl.DataFrame:
    """Return the exposures with ``accepted`` (bool): a redemption of the offer in [start, end or start + window),
    ``until`` (that window's end) and ``redeemed_at`` (the first such redemption, null when none).

    A redemption is credited to every open exposure of that offer for that customer (a customer shown an offer
    twice and redeeming once accepted both times: each exposure stands for its own decision). ``until`` and
    ``redeemed_at`` let a fit see a label as it stood at an earlier moment (:func:`labels_at`).
    """
    ends = pl.coalesce(pl.col("end"), pl.col("start") + pl.duration(days=window_days))
    exposures = history.exposures.with_row_index("_row").with_columns(ends.alias("until"))
    hits = (
        exposures.select("_row", "customer_id", "offer_id", "start", "until")
        .join(history.outcomes, on=["customer_id", "offer_id"], how="inner")
        .filter((pl.col("timestamp") >= pl.col("start")) & (pl.col("timestamp") < pl.col("until")))
        .group_by("_row")
        .agg(pl.col("timestamp").min().alias("redeemed_at"))
    )
    return (
        exposures.join(hits, on="_row", how="left")
        .with_columns(pl.col("redeemed_at").is_not_null().alias("accepted"))
        .sort("_row")
        .drop("_row")
    )


def labels_at(labelled: pl.DataFrame, moment: dt.datetime) -> pl.DataFrame:
    """Return ``labelled`` exposures as their labels stood at ``moment``: ``accepted`` only for a redemption
    before it, ``complete`` when the window had closed by then, ``observed_share`` of the window seen by then.

    A fit at a validation cut uses these, so that no redemption from the validation period labels a training
    exposure (an exposure whose window crosses the cut is *censored* there, not given its later outcome).
    """
    seen = pl.min_horizontal(pl.col("until"), pl.lit(moment)) - pl.col("start")
    length = (pl.col("until") - pl.col("start")).dt.total_seconds()
    return labelled.with_columns(
        (pl.col("redeemed_at").is_not_null() & (pl.col("redeemed_at") < moment)).alias("accepted"),
        (pl.col("until") <= moment).alias("complete"),
        pl.when(length > 0)
        .then(seen.dt.total_seconds() / length)
        .otherwise(1.0)
        .clip(0.0, 1.0)
        .alias("observed_share"),
    )


def read_table(path: Path) -> pl.DataFrame:
    """Read a CSV or Parquet file; raises ``DataError`` naming it when it cannot be read."""
    try:
        return pl.read_parquet(path) if Path(path).suffix == ".parquet" else pl.read_csv(path, try_parse_dates=True)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def read_history(
    exposures: Path, outcomes: Path, offer_items: Path | None = None, offer_kinds: Path | None = None
) -> ResponseHistory:
    """Read a history in the standard schema from files (CSV or Parquet); raises ``DataError``."""
    items = read_table(offer_items).select(pl.col("offer_id", "item_id").cast(pl.String)) if offer_items else None
    kinds = read_table(offer_kinds).select(pl.col("offer_id", "kind").cast(pl.String)) if offer_kinds else None
    history = ResponseHistory(
        exposures_frame(read_table(exposures), str(exposures)),
        outcomes_frame(read_table(outcomes), str(outcomes)),
        source=f"files ({Path(exposures).name}, {Path(outcomes).name})",
    )
    if items is not None:
        history = ResponseHistory(history.exposures, history.outcomes, items, history.offer_kinds, history.source)
    if kinds is not None:
        history = ResponseHistory(history.exposures, history.outcomes, history.offer_items, kinds, history.source)
    return history


def history_before(history: ResponseHistory, moment: dt.datetime) -> ResponseHistory:
    """Return the part of ``history`` known strictly before ``moment`` (exposures started, outcomes happened)."""
    return ResponseHistory(
        history.exposures.filter(pl.col("start") < moment),
        history.outcomes.filter(pl.col("timestamp") < moment),
        history.offer_items,
        history.offer_kinds,
        history.source,
    )
