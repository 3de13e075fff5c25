"""Load a transactions file of any supported layout, validate every row, and account for each one.

Whole-file problems raise ``DataError`` (one line: file, what is wrong, what to do). Row problems reject
just those rows — they go to the rejects file with the source row number and a reason — and the rest are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recsys.columns import Columns
from recsys.data.adapters import PRE_REASON, RETURN, Adapter, adapter_for, guess_schema
from recsys.data.catalog import derive_catalog, load_catalog
from recsys.data.parsing import (
    UTC_US,
    clean_id,
    present,
    repair_timestamps,
    timestamp_expr,
    timestamp_formats,
    to_float,
)
from recsys.data.rejects import write_rejects
from recsys.data.report import LoadResult, Reason, ValidationReport
from recsys.data.sources import FIELDS_OK, ROW, RawSource, open_source
from recsys.exceptions import DataError

EMPTY = "_empty"
TS_TEXT = "_ts_text"  # the timestamp text where the main format did not parse it (null elsewhere)
DESCRIPTION = "_description"
STANDARD_ORDER = (
    Columns.customer_id,
    Columns.item_id,
    Columns.timestamp,
    Columns.quantity,
    Columns.price,
    Columns.amount,
    Columns.order_id,
    Columns.channel,
    Columns.store_id,
)


def load_transactions(
    path: str | Path,
    schema: str = "standard",
    rejects_path: str | Path | None = None,
    *,
    catalog: str | Path | None = None,
    delimiter: str = ",",
) -> LoadResult:
    """Read, validate and standardise ``path`` (CSV, CSV.gz or Parquet) laid out as ``schema``.

    ``catalog`` is an optional catalog file; without one the Complete Journey adapter reads
    ``products.parquet`` beside the transactions and Online Retail derives one from descriptions.
    """
    adapter = adapter_for(schema)
    source = open_source(path, delimiter=delimiter)
    frame, formats = _standard_frame(source, adapter)
    ragged = source.ragged_rows()
    frame = _fix_timestamps(frame, formats)
    frame = frame.with_columns(_fields_ok(ragged)).with_columns(_reason().alias(Columns.reason))
    is_rejected = pl.col(Columns.reason).is_not_null()
    # One streaming pass: the raw text is read in batches and never held whole; used rows are never copied.
    used, rejected = pl.collect_all(
        [_finish(frame.filter(~is_rejected), adapter), frame.filter(is_rejected).select(ROW, Columns.reason)],
        engine="streaming",
    )
    rows_read = used.height + rejected.height
    if rows_read == 0:
        raise DataError(f"{source.path}: has a header but no data rows — export the data again with at least one row")
    reasons = dict(rejected.get_column(Columns.reason).value_counts().iter_rows())
    written = None
    if rejects_path is not None:
        written = str(write_rejects(source, rejected, Path(rejects_path)))
    has_returns = bool(used.get_column(RETURN).any())
    returns = used.filter(pl.col(RETURN)).select(STANDARD_ORDER)
    purchases = used.filter(~pl.col(RETURN)) if has_returns else used
    report = ValidationReport(
        source=str(source.path),
        schema=adapter.name,
        rows_read=rows_read,
        rows_used=used.height,
        rows_rejected=rejected.height,
        reasons=reasons,
        returns=returns.height,
        rejects_path=written,
    )
    if used.height == 0:
        top = ", ".join(f"{name} ({count})" for name, count in report.to_dict()["reasons"].items())
        hint = f" (rejected rows are in {written})" if written else " (pass --rejects FILE to see each row)"
        raise DataError(
            f"{source.path}: no usable row — all {rows_read} rows were rejected: {top}{hint}; "
            f"fix the file or choose the right --schema"
        )
    catalog_frame, catalog_report = _catalog(source, adapter, purchases, catalog, delimiter)
    return LoadResult(
        transactions=purchases.select(STANDARD_ORDER),
        returns=returns,
        catalog=catalog_frame,
        report=report,
        catalog_report=catalog_report,
    )


def _match_columns(source: RawSource, adapter: Adapter) -> dict[str, str]:
    """Map the file's column names onto the adapter's (case-insensitively); raise naming what is missing."""
    by_lower = {name.lower(): name for name in source.columns}
    missing = [name for name in adapter.required if name.lower() not in by_lower]
    if missing:
        found = ", ".join(source.columns[:12]) + (" …" if len(source.columns) > 12 else "")
        other = guess_schema(source.columns)
        todo = (
            f"this looks like --schema {other}"
            if other and other != adapter.name
            else (f"the {adapter.name} schema needs: {adapter.describe}")
        )
        raise DataError(f"{source.path}: missing column(s) {', '.join(missing)} (found: {found}) — {todo}")
    wanted = adapter.required + adapter.optional
    return {by_lower[name.lower()]: name for name in wanted if name.lower() in by_lower}


def _fix_timestamps(frame: pl.LazyFrame, formats: tuple[str, ...]) -> pl.LazyFrame:
    """Parse the timestamps the main format missed with the other formats.

    A first streaming pass collects just those rows (few, usually none); the fixes are then looked up by row
    number in the main pass, so the main pass stays one elementwise scan.
    """
    if not formats:
        return frame
    missed = frame.select(ROW, TS_TEXT).filter(pl.col(TS_TEXT).is_not_null()).collect(engine="streaming")
    if missed.height:
        fixed = repair_timestamps(missed.get_column(TS_TEXT), formats[1:])
        lookup = pl.col(ROW).replace_strict(missed.get_column(ROW), fixed, default=None, return_dtype=UTC_US)
        frame = frame.with_columns(
            pl.when(pl.col(TS_TEXT).is_not_null())
            .then(lookup)
            .otherwise(pl.col(Columns.timestamp))
            .alias(Columns.timestamp)
        )
    return frame.drop(TS_TEXT)


def _fields_ok(ragged: tuple[pl.Series, int] | None) -> pl.Expr:
    if ragged is None or ragged[0].len() == 0:
        return pl.lit(True).alias(FIELDS_OK)
    return (~pl.col(ROW).is_in(ragged[0].implode())).alias(FIELDS_OK)


def _standard_frame(source: RawSource, adapter: Adapter) -> tuple[pl.LazyFrame, tuple[str, ...]]:
    """Raw columns → standard names with parsed ids, numbers and timestamps; and the timestamp formats tried."""
    matched = _match_columns(source, adapter)
    frame = source.frame.with_columns(pl.all_horizontal([pl.col(c).is_null() for c in source.columns]).alias(EMPTY))
    frame = frame.rename({actual: name for actual, name in matched.items() if actual != name})
    frame = adapter.pre(frame)
    names = frame.collect_schema().names()
    if RETURN not in names:
        frame = frame.with_columns(pl.lit(False).alias(RETURN))
    if PRE_REASON not in names:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(PRE_REASON))
    if "Description" in names:
        frame = frame.with_columns(pl.col("Description").cast(pl.String).str.strip_chars().alias(DESCRIPTION))
    frame = frame.rename({src: dst for src, dst in adapter.rename.items() if src in names})
    types = frame.collect_schema()
    ts_type = types[Columns.timestamp]
    formats: tuple[str, ...] = ()
    ts_columns = [timestamp_expr(Columns.timestamp, ts_type).alias(Columns.timestamp)]
    if ts_type == pl.String:
        sample = frame.select(Columns.timestamp).head(2000).collect().get_column(Columns.timestamp)
        formats = timestamp_formats(sample, extra_formats=adapter.timestamp_formats)
        parsed_ts = timestamp_expr(Columns.timestamp, ts_type, formats[0])
        text = pl.col(Columns.timestamp).str.strip_chars()
        ts_columns = [
            parsed_ts.alias(Columns.timestamp),
            pl.when(parsed_ts.is_null() & (text.str.len_bytes() > 0)).then(text).alias(TS_TEXT),
        ]
    optional = [
        (clean_id(name) if name in types else pl.lit(None, dtype=pl.String)).alias(name)
        for name in (Columns.order_id, Columns.channel, Columns.store_id)
    ]
    frame = frame.select(
        ROW,
        EMPTY,
        RETURN,
        PRE_REASON,
        *([DESCRIPTION] if DESCRIPTION in types else []),
        clean_id(Columns.customer_id).alias(Columns.customer_id),
        clean_id(Columns.item_id).alias(Columns.item_id),
        present(Columns.timestamp, ts_type).alias("_ts_present"),
        *ts_columns,
        present(Columns.quantity, types[Columns.quantity]).alias("_q_present"),
        to_float(Columns.quantity, types[Columns.quantity]).alias(Columns.quantity),
        present(Columns.price, types[Columns.price]).alias("_p_present"),
        to_float(Columns.price, types[Columns.price]).alias(Columns.price),
        *optional,
    )
    return adapter.post(frame), formats


def _reason() -> pl.Expr:
    """The first reason a row cannot be used, or null. Order matters: structural problems first."""
    q, p = pl.col(Columns.quantity), pl.col(Columns.price)
    checks = [
        (~pl.col(FIELDS_OK), Reason.ragged_row),
        (pl.col(EMPTY), Reason.empty_row),
        (pl.col(PRE_REASON).is_not_null(), None),
        (pl.col(Columns.customer_id).is_null(), Reason.missing_customer_id),
        (pl.col(Columns.item_id).is_null(), Reason.missing_item_id),
        (~pl.col("_ts_present"), Reason.missing_timestamp),
        (pl.col(Columns.timestamp).is_null(), Reason.unparsable_timestamp),
        (~pl.col("_q_present"), Reason.missing_quantity),
        (q.is_null(), Reason.non_numeric_quantity),
        (~q.is_finite(), Reason.non_finite_quantity),
        (q <= 0, Reason.non_positive_quantity),
        (~pl.col("_p_present"), Reason.missing_price),
        (p.is_null(), Reason.non_numeric_price),
        (~p.is_finite(), Reason.non_finite_price),
        (p < 0, Reason.negative_price),
    ]
    # A when/then chain started on the module: polars types each link differently (Then, ChainedThen).
    expr: Any = pl
    for condition, reason in checks:
        value = pl.col(PRE_REASON) if reason is None else pl.lit(reason)
        expr = expr.when(condition).then(value)
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def _finish(used: pl.LazyFrame, adapter: Adapter) -> pl.LazyFrame:
    """Typed standard columns; order ids synthesised from customer + time where the file has none."""
    customer, ts = pl.col(Columns.customer_id), pl.col(Columns.timestamp)
    # "<customer>@<epoch seconds>": one order per customer and second; integer formatting is ~10x faster than strftime
    synthetic = pl.concat_str([customer, pl.lit("@"), ts.dt.epoch("s").cast(pl.String)])
    channel = pl.col(Columns.channel)
    if adapter.channel is not None:
        channel = channel.fill_null(pl.lit(adapter.channel))
    return used.with_columns(
        ts.cast(UTC_US),
        (pl.col(Columns.quantity) * pl.col(Columns.price)).alias(Columns.amount),
        pl.coalesce(pl.col(Columns.order_id), synthetic).alias(Columns.order_id),
        channel.alias(Columns.channel),
    )


def _catalog(
    source: RawSource, adapter: Adapter, purchases: pl.DataFrame, catalog: str | Path | None, delimiter: str
) -> tuple[pl.DataFrame | None, ValidationReport | None]:
    if catalog is not None:
        loaded = load_catalog(catalog, delimiter=delimiter)
        return loaded.catalog, loaded.report
    return derive_catalog(adapter.name, source.path, purchases), None
