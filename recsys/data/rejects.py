"""Write rejected rows — source row number, reason, and the row's original values — to CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys.columns import Columns
from recsys.data.sources import ROW, RawSource
from recsys.exceptions import DataError


def write_rejects(source: RawSource, rejected: pl.DataFrame, path: Path) -> Path:
    """Write ``rejected`` (``_row``, ``reason``) joined with the raw values of those rows; return the path.

    The file is written even when nothing was rejected (a header only), so a pipeline can always read it.
    Parquet when ``path`` ends in ``.parquet``, CSV otherwise.
    """
    raw = (
        source.frame.join(rejected.lazy(), on=ROW, how="inner")
        .select(pl.col(ROW).alias(Columns.row), Columns.reason, pl.exclude(ROW, Columns.reason).cast(pl.String))
        .sort(Columns.row)
        .collect()
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            raw.write_parquet(path)
        else:
            raw.write_csv(path)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot write the rejects file ({exc.strerror}) — choose a writable --rejects path"
        ) from None
    return path
