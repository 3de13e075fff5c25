"""Open a CSV or Parquet file as a lazy frame of raw columns, or explain in one line why it cannot be used.

Every whole-file problem raises :class:`recsys.exceptions.DataError` whose message names the file,
what is wrong and what to do. Row problems are not decided here (see ``recsys.data.rows``).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import DataError

ROW = "_row"  # 1-based data row number in the source file (header excluded)
FIELDS_OK = "_fields_ok"  # False when a CSV line has more or fewer fields than the header
SAMPLE_BYTES = 1 << 16
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_MAGIC = {
    b"PK\x03\x04": "a zip archive (an Excel .xlsx workbook is one): export the sheet as CSV",
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document: export the sheet as CSV",
    b"SQLite format 3": "an SQLite database: export the table as CSV",
    b"\x7fELF": "an executable",
    b"BZh": "a bzip2 archive: decompress it first (gzip is read directly)",
    b"\xfd7zXZ": "an xz archive: decompress it first (gzip is read directly)",
    b"ARROW1": "an Arrow IPC file: write it as Parquet",
}


@dataclass(frozen=True)
class RawSource:
    """A readable file: its format, header, and a lazy frame of its columns plus ``_row`` (and ``_fields_ok``)."""

    path: Path
    format: str  # "csv" | "parquet"
    columns: tuple[str, ...]
    frame: pl.LazyFrame
    delimiter: str = ","
    compressed: bool = False

    def ragged_rows(self) -> tuple[pl.Series, int] | None:
        """Row numbers of CSV lines with more or fewer fields than the header, and the number of data lines.

        None when it cannot be told line by line (Parquet, or quoted fields spanning lines). Compute it
        before collecting the data: its own peak memory then does not add to the data's.
        """
        if self.format != "csv":
            return None
        counts = _field_counts(self.path, delimiter=self.delimiter, compressed=self.compressed)
        if counts is None:
            return None
        bad = (counts != len(self.columns)).fill_null(False)
        return (bad.arg_true() + 1).cast(pl.UInt32), counts.len()

    @staticmethod
    def with_fields_ok(parsed: pl.DataFrame, ragged: tuple[pl.Series, int] | None) -> pl.DataFrame:
        """Add ``_fields_ok`` (all True when unknown, or when lines and rows do not line up).

        Built from the few ragged row numbers rather than a full-length column, so the frame is not re-chunked.
        """
        if ragged is None or ragged[1] != parsed.height or ragged[0].len() == 0:
            return parsed.with_columns(pl.lit(True).alias(FIELDS_OK))
        return parsed.with_columns((~pl.col(ROW).is_in(ragged[0].implode())).alias(FIELDS_OK))


def _fail(path: Path, problem: str, todo: str) -> DataError:
    return DataError(f"{path}: {problem} — {todo}")


def _sample(path: Path) -> tuple[bytes, bool]:
    """First bytes of the file (decompressed when gzip) and whether it is gzip."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if head[:2] != b"\x1f\x8b":
        return head, False
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(SAMPLE_BYTES), True
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(path, f"is a damaged gzip file ({exc})", "re-create or re-download it") from None


def _check_text(path: Path, sample: bytes) -> str:
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            raise _fail(path, f"is {what}, not CSV or Parquet", "give a CSV (UTF-8, comma-separated) or Parquet file")
    if b"\x00" in sample:
        raise _fail(
            path, "holds binary data, not CSV text or Parquet", "give a CSV (UTF-8, comma-separated) or Parquet file"
        )
    text = sample.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad > max(8, len(text) // 20):
        raise _fail(path, "is not UTF-8 text", "save it as UTF-8 CSV (e.g. iconv -f latin1 -t utf-8) or as Parquet")
    return text.lstrip("\ufeff")


def _header_fields(line: str, delimiter: str) -> list[str]:
    import csv

    return next(csv.reader([line], delimiter=delimiter), [])


def _check_delimiter(path: Path, header: str, delimiter: str) -> None:
    fields = _header_fields(header, delimiter)
    if len(fields) > 1:
        return
    for other, name in DELIMITERS.items():
        if other != delimiter and len(_header_fields(header, other)) > 1:
            raise _fail(
                path,
                f"the header is separated by {name}s ({header.strip()[:80]!r}), not "
                f"{DELIMITERS.get(delimiter, repr(delimiter))}s",
                f"re-export it comma-separated or pass --delimiter {other!r}",
            )


def open_source(path: str | Path, *, delimiter: str = ",") -> RawSource:
    """Check ``path`` and return its raw columns lazily. Raises ``DataError`` for whole-file problems."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such file", "check the path (relative paths start from the current directory)")
    if path.is_dir():
        raise _fail(path, "is a directory", "give the path of a CSV or Parquet file inside it")
    if path.stat().st_size == 0:
        raise _fail(
            path, "is empty (0 bytes)", "export the data again; the file must have a header and at least one row"
        )
    sample, compressed = _sample(path)
    if sample.startswith(b"PAR1") and not compressed:
        return _open_parquet(path)
    text = _check_text(path, sample)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise _fail(path, "holds only blank lines", "export the data again with a header and at least one row")
    _check_delimiter(path, lines[0], delimiter)
    header = [name.strip() for name in _header_fields(lines[0], delimiter)]
    dupes = sorted({name for name in header if header.count(name) > 1})
    if dupes:
        raise _fail(path, f"the header repeats column(s) {', '.join(dupes)}", "give every column a distinct name")
    return _open_csv(path, delimiter=delimiter, compressed=compressed)


def _open_parquet(path: Path) -> RawSource:
    try:
        frame = pl.scan_parquet(path)
        columns = tuple(frame.collect_schema().names())
    except Exception as exc:  # polars raises several types for damaged files
        raise _fail(
            path, f"is not a readable Parquet file ({type(exc).__name__})", "re-create it, or give a CSV file"
        ) from None
    return RawSource(path, "parquet", columns, frame.with_row_index(ROW, offset=1))


def _open_csv(path: Path, *, delimiter: str, compressed: bool) -> RawSource:
    options: dict[str, Any] = {
        "separator": delimiter,
        "infer_schema": False,
        "encoding": "utf8-lossy",
        "truncate_ragged_lines": True,
    }
    try:
        # scan_csv cannot read gzip
        data = pl.read_csv(path, **options).lazy() if compressed else pl.scan_csv(path, **options)
        columns = tuple(data.collect_schema().names())
    except Exception as exc:
        raise _fail(
            path, f"cannot be parsed as CSV ({str(exc).splitlines()[0][:120]})", "check quoting and the delimiter"
        ) from None
    clean = [name.lstrip("\ufeff").strip() for name in columns]
    data = data.rename(dict(zip(columns, clean, strict=True)))
    frame = data.with_row_index(ROW, offset=1)
    return RawSource(path, "csv", tuple(clean), frame, delimiter=delimiter, compressed=compressed)


def _lines(path: Path, compressed: bool) -> pl.LazyFrame:
    options: dict[str, Any] = {
        "has_header": False,
        "separator": "\x1f",
        "quote_char": None,
        "schema": {"line": pl.String},
        "encoding": "utf8-lossy",
        "truncate_ragged_lines": True,
    }
    return pl.read_csv(path, **options).lazy() if compressed else pl.scan_csv(path, **options)


def _field_counts(path: Path, *, delimiter: str, compressed: bool) -> pl.Series | None:
    """Number of fields of every data line (quoted delimiters not counted), or None when lines and rows differ.

    Lines and rows differ only when a quoted field spans lines (a line with an odd number of quotes); then
    short rows still show up as missing values. Runs on the streaming engine: only the counts are kept.
    """
    line = pl.col("line")
    odd = _lines(path, compressed).select((line.str.count_matches('"', literal=True) % 2 == 1).any())
    if odd.collect(engine="streaming").item():
        return None
    unquoted = pl.when(line.str.contains('"', literal=True)).then(line.str.replace_all('"[^"]*"', "")).otherwise(line)
    counts = (
        _lines(path, compressed)
        .slice(1)
        .select((unquoted.str.count_matches(delimiter, literal=True) + 1).cast(pl.UInt32).alias("n"))
    )
    return counts.collect(engine="streaming").get_column("n")
