"""Polars expressions that turn raw values (strings from CSV, typed values from Parquet) into standard types.

Unparsable values become null; the caller decides the reject reason from null-after-parse vs. null-before.
"""

from __future__ import annotations

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

# Tried in this order on a sample; the best one parses the whole column, the others only the rows it missed.
NAIVE_FORMATS = (  # exact formats without %.f first: polars parses them several times faster
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)
AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
US_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")  # only where a schema says so (UCI's original file)


def clean_id(column: str) -> pl.Expr:
    """An id as a trimmed string; empty or whitespace-only becomes null. Any Unicode is a valid id."""
    value = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(value.str.len_bytes() > 0).then(value).otherwise(None)


def present(column: str, dtype: pl.DataType) -> pl.Expr:
    """True when the raw value is there (not null, not blank text)."""
    if dtype == pl.String:
        return pl.col(column).str.strip_chars().str.len_bytes().fill_null(0) > 0
    return pl.col(column).is_not_null()


def to_float(column: str, dtype: pl.DataType) -> pl.Expr:
    """A number as Float64; text that is not a number becomes null (``nan``/``inf`` parse and are caught later)."""
    if dtype == pl.String:
        return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
    if dtype.is_numeric():
        return pl.col(column).cast(pl.Float64)
    return pl.col(column).cast(pl.String).cast(pl.Float64, strict=False)


def _parse_expr(expr: pl.Expr, fmt: str) -> pl.Expr:
    aware = fmt.endswith("%z")
    dtype = pl.Datetime("us", "UTC" if aware else None)
    # cache=False: timestamps are mostly unique, so polars' per-value cache costs more than it saves
    parsed = expr.str.strptime(dtype, fmt, strict=False, exact=True, cache=False)
    return parsed.dt.convert_time_zone("UTC") if aware else parsed.dt.replace_time_zone("UTC")


def _parse(values: pl.Series, fmt: str) -> pl.Series:
    return pl.select(_parse_expr(pl.lit(values), fmt)).to_series()


def _zulu(values: pl.Series) -> pl.Series:
    text = values.str.replace(r"[Zz]$", "+00:00")
    result = _parse(text, AWARE_FORMATS[0])
    for fmt in AWARE_FORMATS[1:]:
        if result.null_count():
            result = result.zip_with(result.is_not_null(), _parse(text, fmt))
    return result


def timestamp_formats(sample: pl.Series, *, extra_formats: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Candidate formats, the one that parses most of ``sample`` first (ties keep the faster exact formats first)."""
    formats = NAIVE_FORMATS + AWARE_FORMATS + extra_formats
    text = sample.cast(pl.String).str.strip_chars().drop_nulls().head(2000)
    if text.len():
        formats = tuple(sorted(formats, key=lambda fmt: -_parse(text, fmt).is_not_null().sum()))
    return formats


def timestamp_expr(column: str, dtype: pl.DataType, fmt: str | None = None) -> pl.Expr:
    """Parse ``column`` to Datetime(us, UTC): typed dates/datetimes are converted, text is parsed with ``fmt``.

    Naive times are taken as UTC. Text the format does not fit becomes null: see :func:`repair_timestamps`.
    """
    column_expr = pl.col(column)
    if dtype == pl.Date:
        return column_expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return column_expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return column_expr.dt.convert_time_zone("UTC").cast(UTC_US)
    return _parse_expr(column_expr.cast(pl.String).str.strip_chars(), fmt or NAIVE_FORMATS[0]).cast(UTC_US)


def repair_timestamps(text: pl.Series, formats: tuple[str, ...]) -> pl.Series:
    """Parse ``text`` (the values the main format missed) with each other format in turn, then as ``…Z``."""
    text = text.cast(pl.String).str.strip_chars()
    result = pl.Series(text.name, [None] * text.len(), dtype=UTC_US)
    for fmt in (*formats, "zulu"):
        missing = result.is_null() & text.is_not_null()
        if not missing.any():
            break
        index = missing.arg_true()
        subset = text.gather(index)
        retry = _zulu(subset) if fmt == "zulu" else _parse(subset, fmt)
        result = result.scatter(index, retry.cast(UTC_US))
    return result


def parse_timestamps(values: pl.Series, *, extra_formats: tuple[str, ...] = ()) -> pl.Series:
    """Parse a whole series of timestamps (ISO 8601, with or without time, offset or ``Z``); null if unparsable."""
    if values.dtype != pl.String:
        return values.to_frame().select(timestamp_expr(values.name, values.dtype)).to_series()
    formats = timestamp_formats(values, extra_formats=extra_formats)
    result = values.to_frame().select(timestamp_expr(values.name, values.dtype, formats[0])).to_series()
    missing = (result.is_null() & values.is_not_null()).arg_true()
    if missing.len():
        result = result.scatter(missing, repair_timestamps(values.gather(missing), formats[1:]))
    return result
