"""Polars expressions that turn raw values (strings from CSV, typed values from Parquet) into standard types.

Unparsable values become null; the caller decides the reject reason from null-after-parse vs. null-before.
"""

from __future__ import annotations

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

# Tried in this order on a sample; the best one parses the whole column, the others only the rows it missed.
NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
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


def _parse(values: pl.Series, fmt: str) -> pl.Series:
    aware = fmt.endswith("%z")
    parsed = values.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC" if aware else None)
    return parsed.dt.convert_time_zone("UTC") if aware else parsed.dt.replace_time_zone("UTC")


def parse_timestamps(values: pl.Series, *, extra_formats: tuple[str, ...] = ()) -> pl.Series:
    """Parse timestamp text (ISO 8601, with or without time, offset or ``Z``) to Datetime(us, UTC); null if unparsable.

    Naive times are taken as UTC. The format that parses most of a sample runs on the whole column; the
    others run only on the values it missed, so mixed files cost little more than clean ones.
    """
    if values.dtype == pl.Date:
        return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if isinstance(values.dtype, pl.Datetime):
        if values.dtype.time_zone is None:  # type: ignore[union-attr]
            return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return values.dt.convert_time_zone("UTC").cast(UTC_US)
    text = values.cast(pl.String).str.strip_chars().str.replace(r"[Zz]$", "+00:00")
    formats = NAIVE_FORMATS + AWARE_FORMATS + extra_formats
    sample = text.drop_nulls().head(2000)
    if sample.len():
        formats = tuple(sorted(formats, key=lambda fmt: -_parse(sample, fmt).is_not_null().sum()))
    result = _parse(text, formats[0])
    for fmt in formats[1:]:
        missing = result.is_null() & text.is_not_null()
        if not missing.any():
            break
        index = missing.arg_true()
        retry = _parse(text.gather(index), fmt)
        result = result.scatter(index, retry)
    return result.cast(UTC_US)
