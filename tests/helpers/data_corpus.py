"""Generators of malformed and well-formed input files for the validation tests."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

HEADER = "customer_id,item_id,timestamp,quantity,price\n"
GOOD = "c1,i1,2024-03-01T10:00:00Z,1,2.50\n"


def _text(content: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "tx.csv"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return make


def _directory(folder: Path) -> Path:
    path = folder / "a_folder"
    path.mkdir()
    return path


def _missing(folder: Path) -> Path:
    return folder / "does_not_exist.csv"


def _bad_parquet(folder: Path) -> Path:
    path = folder / "tx.parquet"
    path.write_bytes(b"PAR1" + os.urandom(200))
    return path


def _truncated_gzip(folder: Path) -> Path:
    path = folder / "tx.csv.gz"
    path.write_bytes(gzip.compress((HEADER + GOOD * 50).encode())[:30])
    return path


def _parquet_wrong_columns(folder: Path) -> Path:
    path = folder / "tx.parquet"
    pl.DataFrame({"user": ["a"], "sku": ["b"]}).write_parquet(path)
    return path


# name -> (maker, a word the one-line message must contain)
WHOLE_FILE_PROBLEMS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing_file": (_missing, "no such file"),
    "directory": (_directory, "directory"),
    "zero_bytes": (_text(b""), "empty"),
    "header_only": (_text(HEADER), "no data rows"),
    "blank_lines_only": (_text("\n\n  \n"), "blank"),
    "wrong_columns": (_text("user,product,when,qty,amount\nc1,i1,2024-01-01,1,2\n"), "missing column"),
    "missing_price_column": (_text("customer_id,item_id,timestamp,quantity\nc1,i1,2024-01-01,1\n"), "price"),
    "semicolon_delimiter": (_text(HEADER.replace(",", ";") + GOOD.replace(",", ";")), "semicolon"),
    "tab_delimiter": (_text(HEADER.replace(",", "\t") + GOOD.replace(",", "\t")), "tab"),
    "binary_garbage": (_text(bytes(range(256)) * 40), "binary"),
    "png_image": (_text(b"\x89PNG\r\n\x1a\n" + os.urandom(300)), "PNG"),
    "xlsx_zip": (_text(b"PK\x03\x04" + os.urandom(300)), "zip"),
    "not_utf8": (_text(bytes([0xE9, 0xFF, 0xFE, 0x80]) * 400), "UTF-8"),
    "no_usable_row": (_text(HEADER + ",,,,\nc1,,2024-01-01,1,1\nc2,i2,never,1,1\n"), "no usable row"),
    "damaged_parquet": (_bad_parquet, "Parquet"),
    "truncated_gzip": (_truncated_gzip, "gzip"),
    "duplicate_header": (
        _text("customer_id,customer_id,item_id,timestamp,quantity,price\nc,c,i,2024-01-01,1,1\n"),
        "repeats",
    ),
    "parquet_wrong_columns": (_parquet_wrong_columns, "missing column"),
}

# (csv line, expected reason or None when the row is valid)
ROW_CASES: list[tuple[str, str | None]] = [
    ("c1,i1,2024-03-01T10:00:00Z,1,2.50", None),
    ("c2,i2,2024-03-01 10:00:00,2,0", None),  # a free item is valid
    ("c3,i3,2024-03-01,1.5,3", None),  # date only; fractional quantity (weight)
    ("c4,i4,2024-03-01T10:00:00+02:00,1,1", None),
    ("c5,i5,2024-03-01T10:00:00.123456,1,1", None),
    ("顧客,商品,2024-03-01T10:00:00Z,1,1", None),  # CJK ids
    ("José,crème brûlée,2024-03-01T10:00:00Z,1,1", None),  # accents
    ("🙂,🍰,2024-03-01T10:00:00Z,1,1", None),  # emoji
    ('c6,"item, with comma",2024-03-01T10:00:00Z,1,1', None),
    ("c7,i7,yesterday,1,1", "unparsable_timestamp"),
    ("c8,i8,2024-13-45 99:00:00,1,1", "unparsable_timestamp"),
    ("c9,i9,,1,1", "missing_timestamp"),
    (",i10,2024-03-01,1,1", "missing_customer_id"),
    ("   ,i11,2024-03-01,1,1", "missing_customer_id"),
    ("c12,,2024-03-01,1,1", "missing_item_id"),
    ("c13,i13,2024-03-01,0,1", "non_positive_quantity"),
    ("c14,i14,2024-03-01,-2,1", "non_positive_quantity"),
    ("c15,i15,2024-03-01,abc,1", "non_numeric_quantity"),
    ("c16,i16,2024-03-01,nan,1", "non_finite_quantity"),
    ("c17,i17,2024-03-01,inf,1", "non_finite_quantity"),
    ("c18,i18,2024-03-01,,1", "missing_quantity"),
    ("c19,i19,2024-03-01,1,-0.01", "negative_price"),
    ("c20,i20,2024-03-01,1,free", "non_numeric_price"),
    ("c21,i21,2024-03-01,1,inf", "non_finite_price"),
    ("c22,i22,2024-03-01,1,", "missing_price"),
    ("c23,i23,2024-03-01,1,1,extra", "ragged_row"),
    ("c24,i24,2024-03-01", "ragged_row"),
    ("", "empty_row"),
    ("c25,i25,2024-03-01T10:00:00Z,1,1", None),
]


def row_case_file(folder: Path) -> Path:
    """A CSV holding every row case, in order (row n of the file is ROW_CASES[n-1])."""
    path = folder / "rows.csv"
    path.write_text(HEADER + "".join(line + "\n" for line, _ in ROW_CASES), encoding="utf-8")
    return path
