"""Load a transactions file of any supported layout, validate every row, and account for each one.

Whole-file problems raise ``DataError`` (one line: file, what is wrong, what to do). Row problems reject
just those rows — they go to the rejects file with the source row number and a reason — and the rest are used.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys.columns import Columns
from recsys.data.adapters import PRE_REASON, RETURN, Adapter, adapter_for, guess_schema
from recsys.data.catalog import derive_catalog, load_catalog
from recsys.data.parsing import UTC_US, clean_id, parse_timestamps, present, to_float
from recsys.data.rejects import write_rejects
from recsys.data.report import LoadResult, Reason, ValidationReport
from recsys.data.sources import FIELDS_OK, ROW, RawSource, open_source
from recsys.exceptions import DataError

EMPTY = "_empty"
DESCRIPTION = "_description"
STANDARD_ORDER = (
    Columns.customer_id, Columns.item_id, Columns.timestamp, Columns.quantity, Columns.price,
    Columns.amount, Columns.order_id, Columns.channel, Columns.store_id,
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
    frame = _standard_frame(source, adapter)
    parsed = frame.collect()
    if parsed.height == 0:
        raise DataError(f"{source.path}: has a header but no data rows — export the data again with at least one row")
    timestamps = parse_timestamps(parsed.get_column(Columns.timestamp), extra_formats=adapter.timestamp_formats)
    parsed = parsed.with_columns(timestamps.alias(Columns.timestamp))
    parsed = parsed.with_columns(_reason().alias(Columns.reason))

    rejected = parsed.filter(pl.col(Columns.reason).is_not_null()).select(ROW, Columns.reason)
    used = parsed.filter(pl.col(Columns.reason).is_null())
    reasons = dict(rejected.get_column(Columns.reason).value_counts().iter_rows())
    written = None
    if rejects_path is not None:
        written = str(write_rejects(source, rejected, Path(rejects_path)))
    used = _finish(used, adapter)
    returns = used.filter(pl.col(RETURN)).select(STANDARD_ORDER)
    purchases = used.filter(~pl.col(RETURN))
    report = ValidationReport(
        source=str(source.path),
        schema=adapter.name,
        rows_read=parsed.height,
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
            f"{source.path}: no usable row — all {parsed.height} rows were rejected: {top}{hint}; "
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
        todo = f"this looks like --schema {other}" if other and other != adapter.name else (
            f"the {adapter.name} schema needs: {adapter.describe}"
        )
        raise DataError(f"{source.path}: missing column(s) {', '.join(missing)} (found: {found}) — {todo}")
    wanted = adapter.required + adapter.optional
    return {by_lower[name.lower()]: name for name in wanted if name.lower() in by_lower}


def _standard_frame(source: RawSource, adapter: Adapter) -> pl.LazyFrame:
    """Raw columns → standard names with parsed ids and numbers (timestamps are parsed after collecting)."""
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
    optional = [
        (clean_id(name) if name in types else pl.lit(None, dtype=pl.String)).alias(name)
        for name in (Columns.order_id, Columns.channel, Columns.store_id)
    ]
    frame = frame.select(
        ROW, FIELDS_OK, EMPTY, RETURN, PRE_REASON,
        *([DESCRIPTION] if DESCRIPTION in types else []),
        clean_id(Columns.customer_id).alias(Columns.customer_id),
        clean_id(Columns.item_id).alias(Columns.item_id),
        present(Columns.timestamp, types[Columns.timestamp]).alias("_ts_present"),
        (pl.col(Columns.timestamp).str.strip_chars() if types[Columns.timestamp] == pl.String else pl.col(Columns.timestamp)),
        present(Columns.quantity, types[Columns.quantity]).alias("_q_present"),
        to_float(Columns.quantity, types[Columns.quantity]).alias(Columns.quantity),
        present(Columns.price, types[Columns.price]).alias("_p_present"),
        to_float(Columns.price, types[Columns.price]).alias(Columns.price),
        *optional,
    )
    return adapter.post(frame)


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
    expr: pl.Expr | pl.When | pl.Then | None = None
    for condition, reason in checks:
        value = pl.col(PRE_REASON) if reason is None else pl.lit(reason)
        expr = pl.when(condition).then(value) if expr is None else expr.when(condition).then(value)  # type: ignore[union-attr]
    return expr.otherwise(pl.lit(None, dtype=pl.String))  # type: ignore[union-attr]


def _finish(used: pl.DataFrame, adapter: Adapter) -> pl.DataFrame:
    """Typed standard columns; order ids synthesised from customer + time where the file has none."""
    customer, ts = pl.col(Columns.customer_id), pl.col(Columns.timestamp)
    synthetic = pl.concat_str([customer, pl.lit("@"), ts.dt.strftime("%Y-%m-%dT%H:%M:%S")])
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
