"""Catalogs: load a catalog file (``item_id, name, category, price`` + ``margin, in_stock``) or derive one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recsys.columns import CATALOG_OPTIONAL, CATALOG_REQUIRED, Columns
from recsys.data.parsing import clean_id, present, to_float
from recsys.data.rejects import write_rejects
from recsys.data.report import Reason, ValidationReport
from recsys.data.sources import FIELDS_OK, ROW, open_source
from recsys.exceptions import DataError

UNCATEGORISED = "uncategorised"
CATALOG_ORDER = (Columns.item_id, Columns.name, Columns.category, Columns.price, Columns.margin, Columns.in_stock)
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


@dataclass(frozen=True)
class CatalogResult:
    """A validated catalog and the account of its rows."""

    catalog: pl.DataFrame
    report: ValidationReport


def _in_stock(dtype: pl.DataType) -> pl.Expr:
    column = pl.col(Columns.in_stock)
    if dtype == pl.Boolean:
        return column
    text = column.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False).otherwise(None)


def load_catalog(path: str | Path, *, delimiter: str = ",", rejects_path: str | Path | None = None) -> CatalogResult:
    """Read and validate a catalog file. A missing name becomes the item id; a missing category ``uncategorised``."""
    source = open_source(path, delimiter=delimiter)
    by_lower = {name.lower(): name for name in source.columns}
    missing = [name for name in CATALOG_REQUIRED if name not in by_lower]
    if missing:
        raise DataError(
            f"{source.path}: missing catalog column(s) {', '.join(missing)} (found: "
            f"{', '.join(source.columns[:12])}) — "
            f"a catalog needs: {', '.join(CATALOG_REQUIRED)} (+ optional {', '.join(CATALOG_OPTIONAL)})"
        )
    frame = source.frame.rename({by_lower[n]: n for n in CATALOG_REQUIRED + CATALOG_OPTIONAL if n in by_lower})
    types = frame.collect_schema()
    empty = pl.all_horizontal([pl.col(c).is_null() for c in types.names() if c != ROW])
    margin_present = present(Columns.margin, types[Columns.margin]) if Columns.margin in types else pl.lit(False)
    in_stock_present = (
        present(Columns.in_stock, types[Columns.in_stock]) if Columns.in_stock in types else pl.lit(False)
    )
    parsed = frame.select(
        ROW,
        empty.alias("_empty"),
        clean_id(Columns.item_id).alias(Columns.item_id),
        pl.coalesce(clean_id(Columns.name), clean_id(Columns.item_id)).alias(Columns.name),
        clean_id(Columns.category).fill_null(UNCATEGORISED).alias(Columns.category),
        present(Columns.price, types[Columns.price]).alias("_p_present"),
        to_float(Columns.price, types[Columns.price]).alias(Columns.price),
        margin_present.alias("_m_present"),
        (
            to_float(Columns.margin, types[Columns.margin]) if Columns.margin in types else pl.lit(None, pl.Float64)
        ).alias(Columns.margin),
        in_stock_present.alias("_s_present"),
        (_in_stock(types[Columns.in_stock]) if Columns.in_stock in types else pl.lit(True)).alias(Columns.in_stock),
    ).collect()
    if parsed.height == 0:
        raise DataError(
            f"{source.path}: has a header but no data rows — export the catalog again with at least one row"
        )
    parsed = source.with_fields_ok(parsed, source.ragged_rows())
    price = pl.col(Columns.price)
    reason = (
        pl.when(~pl.col(FIELDS_OK))
        .then(pl.lit(Reason.ragged_row))
        .when(pl.col("_empty"))
        .then(pl.lit(Reason.empty_row))
        .when(pl.col(Columns.item_id).is_null())
        .then(pl.lit(Reason.missing_item_id))
        .when(pl.col(Columns.item_id).is_duplicated() & (pl.col(ROW) != pl.col(ROW).min().over(Columns.item_id)))
        .then(pl.lit(Reason.duplicate_item_id))
        .when(~pl.col("_p_present"))
        .then(pl.lit(Reason.missing_price))
        .when(price.is_null())
        .then(pl.lit(Reason.non_numeric_price))
        .when(~price.is_finite())
        .then(pl.lit(Reason.non_finite_price))
        .when(price < 0)
        .then(pl.lit(Reason.negative_price))
        .when(pl.col("_m_present") & ~pl.col(Columns.margin).is_finite().fill_null(False))
        .then(pl.lit(Reason.non_numeric_margin))
        .when(pl.col("_s_present") & pl.col(Columns.in_stock).is_null())
        .then(pl.lit(Reason.invalid_in_stock))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    parsed = parsed.with_columns(reason.alias(Columns.reason), pl.col(Columns.in_stock).fill_null(True))
    rejected = parsed.filter(pl.col(Columns.reason).is_not_null()).select(ROW, Columns.reason)
    used = parsed.filter(pl.col(Columns.reason).is_null()).select(CATALOG_ORDER)
    written = str(write_rejects(source, rejected, Path(rejects_path))) if rejects_path is not None else None
    report = ValidationReport(
        source=str(source.path),
        schema="catalog",
        rows_read=parsed.height,
        rows_used=used.height,
        rows_rejected=rejected.height,
        reasons=dict(rejected.get_column(Columns.reason).value_counts().iter_rows()),
        rejects_path=written,
    )
    if used.height == 0:
        raise DataError(
            f"{source.path}: no usable catalog row — all {parsed.height} rows were rejected: {report.reasons}"
        )
    return CatalogResult(used, report)


def _unit_prices(purchases: pl.DataFrame) -> pl.DataFrame:
    return purchases.group_by(Columns.item_id).agg(pl.col(Columns.price).median().alias(Columns.price))


def derive_catalog(schema: str, transactions_path: Path, purchases: pl.DataFrame) -> pl.DataFrame | None:
    """A catalog for layouts that carry one: Complete Journey's ``products.parquet``, Online Retail's descriptions."""
    if schema == "complete-journey":
        products = transactions_path.parent / "products.parquet"
        return complete_journey_catalog(products, purchases) if products.exists() else None
    if schema == "online-retail" and "_description" in purchases.columns:
        names = (
            purchases.filter(pl.col("_description").is_not_null())
            .group_by(Columns.item_id, "_description")
            .len()
            .sort(["len", "_description"], descending=[True, False])
            .group_by(Columns.item_id, maintain_order=True)
            .first()
            .select(Columns.item_id, pl.col("_description").alias(Columns.name))
        )
        return (
            _unit_prices(purchases)
            .join(names, on=Columns.item_id, how="left")
            .with_columns(
                pl.col(Columns.name).fill_null(pl.col(Columns.item_id)),
                pl.lit(UNCATEGORISED).alias(Columns.category),
                pl.lit(None, dtype=pl.Float64).alias(Columns.margin),
                pl.lit(True).alias(Columns.in_stock),
            )
            .select(CATALOG_ORDER)
            .sort(Columns.item_id)
        )
    return None


def complete_journey_catalog(products_path: Path, purchases: pl.DataFrame) -> pl.DataFrame:
    """Complete Journey products of the purchased items: category = product_category (else department)."""
    try:
        products = pl.read_parquet(products_path)
    except Exception as exc:  # damaged file
        raise DataError(
            f"{products_path}: cannot read the products table ({type(exc).__name__}) — re-install the data"
        ) from None
    name = pl.concat_str(
        [pl.col("product_type").fill_null(pl.col("department")), pl.col("package_size"), pl.col("brand")],
        separator=" ",
        ignore_nulls=True,
    )
    table = products.select(
        pl.col("product_id").cast(pl.String).alias(Columns.item_id),
        name.str.to_titlecase().alias(Columns.name),
        pl.coalesce(pl.col("product_category"), pl.col("department"), pl.lit(UNCATEGORISED)).alias(Columns.category),
    )
    prices = _unit_prices(purchases)
    return (
        prices.join(table, on=Columns.item_id, how="left")
        .with_columns(
            pl.col(Columns.name).fill_null(pl.col(Columns.item_id)),
            pl.col(Columns.category).fill_null(UNCATEGORISED),
            pl.lit(None, dtype=pl.Float64).alias(Columns.margin),
            pl.lit(True).alias(Columns.in_stock),
        )
        .select(CATALOG_ORDER)
        .sort(Columns.item_id)
    )
