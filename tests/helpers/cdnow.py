"""Reader for the raw CDNOW sample (``CDNOW_sample.txt``) into the standard transaction columns.

The file is whitespace separated without a header: master id, sample id, date (YYYYMMDD), CDs bought, dollars.
The customer id is the sample id (1..2357), as in the published summary files.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys.columns import Columns
from recsys.exceptions import DataError


def read_cdnow(path: Path) -> pl.DataFrame:
    """Return the CDNOW transactions in the standard columns (one line per purchase; item ``cd``).

    Raises ``DataError`` when the file is missing or a line does not have five fields.
    """
    if not path.exists():
        raise DataError(f"{path}: file not found")
    lines = pl.read_csv(path, has_header=False, new_columns=["line"], separator="\t", quote_char=None)
    parts = lines.select(pl.col("line").str.extract_all(r"\S+").alias("f"))
    bad = parts.filter(pl.col("f").list.len() != 5).height
    if bad:
        raise DataError(f"{path}: {bad} lines do not have 5 whitespace-separated fields")
    f = pl.col("f")
    return parts.select(
        f.list.get(1).cast(pl.Int64).cast(pl.String).alias(Columns.customer_id),
        pl.lit("cd").alias(Columns.item_id),
        f.list.get(2).str.strptime(pl.Datetime("us"), "%Y%m%d").dt.replace_time_zone("UTC").alias(Columns.timestamp),
        f.list.get(3).cast(pl.Float64).alias(Columns.quantity),
        (f.list.get(4).cast(pl.Float64) / f.list.get(3).cast(pl.Float64).clip(1.0)).alias(Columns.price),
        f.list.get(4).cast(pl.Float64).alias(Columns.amount),
    ).with_columns(
        (pl.col(Columns.customer_id) + ":" + pl.col(Columns.timestamp).dt.strftime("%Y%m%d")).alias(Columns.order_id),
        pl.lit(None, dtype=pl.String).alias(Columns.channel),
        pl.lit(None, dtype=pl.String).alias(Columns.store_id),
    )
