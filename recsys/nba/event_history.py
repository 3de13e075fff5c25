"""The service's own logged events as a :class:`ResponseHistory`, and the offer catalog's items and kinds.

Events are those of ``POST /v1/events`` (as kept by the event store or exported to a file): an ``impression``
with an ``offer_id`` is an exposure starting at its timestamp (open for the attribution window), a ``redeem`` is
an outcome. ``purchase`` events are purchase lines (``price`` × ``quantity``) that extend the transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from recsys.columns import Columns
from recsys.exceptions import DataError
from recsys.nba.offers import Offer
from recsys.nba.response_history import ResponseHistory, exposures_frame, outcomes_frame

_TS = pl.Datetime("us", "UTC")


def read_events(path: Path) -> pl.DataFrame:
    """Read events from a Parquet file or folder (hive-partitioned event store), CSV or JSON lines.

    Raises ``DataError`` naming the path when it cannot be read or lacks ``type``/``customer_id``/``timestamp``.
    """
    path = Path(path)
    try:
        if path.is_dir():
            frame = pl.scan_parquet(str(path / "**" / "*.parquet"), hive_partitioning=True).collect()
        elif path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix in (".jsonl", ".ndjson"):
            frame = pl.read_ndjson(path)
        else:
            frame = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot read events: {exc}") from None
    missing = {"type", "customer_id", "timestamp"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: events need columns {sorted(missing)}; found {frame.columns}")
    return frame


def _offer_events(events: pl.DataFrame, kind: str) -> pl.DataFrame:
    chosen = events.filter((pl.col("type") == kind) & pl.col("offer_id").is_not_null())
    channel = pl.col("channel").cast(pl.String) if "channel" in events.columns else pl.lit(None, dtype=pl.String)
    return chosen.select(
        pl.col("customer_id").cast(pl.String), pl.col("offer_id").cast(pl.String), channel.alias("channel"), "timestamp"
    )


def event_history(
    events: pl.DataFrame, offers: Iterable[Offer] = (), items: pl.DataFrame | None = None
) -> ResponseHistory:
    """Return impressions as exposures and redemptions as outcomes; offers' items and kinds from the catalog.

    Raises ``DataError`` for unreadable timestamps (naming the row).
    """
    if "offer_id" not in events.columns:
        events = events.with_columns(pl.lit(None, dtype=pl.String).alias("offer_id"))
    shown = _offer_events(events, "impression").rename({"timestamp": "start"})
    exposures = exposures_frame(shown, "events (impressions)")
    outcomes = outcomes_frame(_offer_events(events, "redeem").drop("channel"), "events (redeem)")
    offer_items, offer_kinds = catalog_offer_table(offers, items)
    return ResponseHistory(exposures, outcomes, offer_items, offer_kinds, "logged events")


def catalog_offer_table(offers: Iterable[Offer], items: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return ``(offer_items, offer_kinds)`` for catalog offers: target items plus items of target categories."""
    rows: list[dict[str, str]] = []
    kinds: list[dict[str, str]] = []
    by_category: dict[str, list[str]] = {}
    if items is not None and Columns.category in items.columns:
        grouped = items.group_by(Columns.category).agg(pl.col(Columns.item_id).cast(pl.String))
        by_category = {row[0]: row[1] for row in grouped.iter_rows()}
    for offer in offers:
        kinds.append({"offer_id": offer.id, "kind": offer.kind})
        targets = set(offer.target_items)
        for category in offer.target_categories:
            targets.update(by_category.get(category, ()))
        rows.extend({"offer_id": offer.id, "item_id": i} for i in sorted(targets))
    return (
        pl.DataFrame(rows, schema={"offer_id": pl.String, "item_id": pl.String}),
        pl.DataFrame(kinds, schema={"offer_id": pl.String, "kind": pl.String}),
    )


def event_purchases(events: pl.DataFrame) -> pl.DataFrame:
    """Return ``purchase`` events as standard transaction lines (``customer_id, item_id, timestamp, amount``)."""
    if "item_id" not in events.columns:
        return pl.DataFrame(
            schema={"customer_id": pl.String, "item_id": pl.String, "timestamp": _TS, "amount": pl.Float64}
        )
    bought = events.filter((pl.col("type") == "purchase") & pl.col("item_id").is_not_null())
    price = pl.col("price").cast(pl.Float64, strict=False) if "price" in bought.columns else pl.lit(0.0)
    quantity = pl.col("quantity").cast(pl.Float64, strict=False) if "quantity" in bought.columns else pl.lit(1.0)
    typed = outcomes_frame(bought.with_columns(pl.lit("-").alias("offer_id")), "events (purchase)")
    return bought.select(
        pl.col("customer_id").cast(pl.String).alias(Columns.customer_id),
        pl.col("item_id").cast(pl.String).alias(Columns.item_id),
        typed.get_column("timestamp").alias(Columns.timestamp),
        (price.fill_null(0.0) * quantity.fill_null(1.0)).alias(Columns.amount),
    )
