"""The history the offline jobs learn from: the base transactions plus the purchases and returns synced from events.

- Event rows go through the same checks as file rows (missing ids, bad quantity or price …); rows that cannot be
  used are rejected with a reason, and the report counts every row: ``rows_used + rows_rejected == rows_read``.
- An order sent twice counts once: a purchase line is identified by (customer, order id, item, quantity, price);
  a second copy — from a retried batch or an order the base file already holds — is rejected as
  ``duplicate_order_line``. A purchase without ``order_id`` gets ``<customer>@<epoch seconds>``, as file rows do.
- A ``return`` event is a return, never a purchase: it lands in ``returns``.
- A purchase event without ``quantity`` counts one unit; one without ``price`` is rejected (``missing_price``).
- Incremental: each committed event file is validated once; its validated rows are cached under
  ``<work>/history`` and ``manifest.json`` lists the files read. The validated base file is cached by its
  fingerprint (path, size, modification time, schema).
- ``shift`` moves the base file's dates by a fixed amount (the demo's year-old data made recent, so that events
  posted today are its next day); event rows are never shifted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from recsys.columns import Columns
from recsys.data.report import LoadResult, ValidationReport
from recsys.events.store import EventStore

MANIFEST = "manifest.json"
DUPLICATE = "duplicate_order_line"
HISTORY_KINDS = ("purchase", "return")
IMPLICIT_KINDS = ("view", "click")
STANDARD: dict[str, Any] = {
    Columns.customer_id: pl.String,
    Columns.item_id: pl.String,
    Columns.timestamp: pl.Datetime("us", "UTC"),
    Columns.quantity: pl.Float64,
    Columns.price: pl.Float64,
    Columns.amount: pl.Float64,
    Columns.order_id: pl.String,
    Columns.channel: pl.String,
    Columns.store_id: pl.String,
}
KIND = "_kind"
LINE = (Columns.customer_id, Columns.order_id, Columns.item_id, Columns.quantity, Columns.price)


@dataclass
class HistorySummary:
    """What the history stage read: base rows, event rows (new this time and cached), duplicates, rejects."""

    base_rows: int = 0
    base_cached: bool = False
    event_files: int = 0
    event_files_parsed: int = 0
    event_rows: int = 0
    event_purchases: int = 0
    event_returns: int = 0
    event_rejected: dict[str, int] = field(default_factory=dict)
    implicit_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return dataclasses.asdict(self)


@dataclass
class History:
    """The history the jobs read, the lines that came from events alone (for the ledger), and implicit rows."""

    result: LoadResult
    events: LoadResult
    summary: HistorySummary
    implicit: pl.DataFrame


def file_fingerprint(path: Path) -> str:
    """Return a cheap fingerprint of a file: its resolved path, size and modification time."""
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def base_end(base: Path, schema: str, catalog: Path | None, work: Path) -> dt.datetime:
    """Return the last purchase timestamp of the (validated, cached) base file; raises ``DataError`` when empty."""
    from recsys.exceptions import DataError

    loaded = _base(base, schema, catalog, work, HistorySummary())
    last = loaded.transactions.get_column(Columns.timestamp).max()
    if last is None:
        raise DataError(f"{base}: no usable purchase rows; check {work / 'base' / 'rejects.csv'}")
    return last  # type: ignore[return-value]


def shifted(loaded: LoadResult, shift: dt.timedelta) -> LoadResult:
    """Return ``loaded`` with ``shift`` added to the timestamps of its purchases and returns."""
    ts = pl.col(Columns.timestamp)
    return dataclasses.replace(
        loaded,
        transactions=loaded.transactions.with_columns(ts + shift),
        returns=loaded.returns.with_columns(ts + shift)
        if Columns.timestamp in loaded.returns.columns
        else loaded.returns,
    )


def validate_events(frame: pl.DataFrame) -> pl.DataFrame:
    """Return purchase and return events as standard transaction rows with ``reason`` (null when usable).

    Keeps ``stream_id`` and ``_kind`` (``purchase``/``return``). Duplicates are found later, across files.
    """
    c, i, t, q, p = Columns.customer_id, Columns.item_id, Columns.timestamp, Columns.quantity, Columns.price
    events = frame.filter(pl.col("type").is_in(HISTORY_KINDS))
    quantity = pl.col("quantity").fill_null(1.0)
    reason = (
        pl.when(pl.col("customer_id").is_null() | (pl.col("customer_id").str.strip_chars() == ""))
        .then(pl.lit("missing_customer_id"))
        .when(pl.col("item_id").is_null() | (pl.col("item_id").str.strip_chars() == ""))
        .then(pl.lit("missing_item_id"))
        .when(pl.col("timestamp").is_null())
        .then(pl.lit("unparsable_timestamp"))
        .when(~quantity.is_finite())
        .then(pl.lit("non_finite_quantity"))
        .when(quantity <= 0)
        .then(pl.lit("non_positive_quantity"))
        .when(pl.col("price").is_null())
        .then(pl.lit("missing_price"))
        .when(~pl.col("price").is_finite())
        .then(pl.lit("non_finite_price"))
        .when(pl.col("price") < 0)
        .then(pl.lit("negative_price"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    synthetic = pl.concat_str([pl.col("customer_id"), pl.lit("@"), pl.col("timestamp").dt.epoch("s").cast(pl.String)])
    return events.select(
        pl.col("stream_id"),
        pl.col("type").alias(KIND),
        pl.col("customer_id").str.strip_chars().alias(c),
        pl.col("item_id").str.strip_chars().alias(i),
        pl.col("timestamp").alias(t),
        quantity.alias(q),
        pl.col("price").alias(p),
        (quantity * pl.col("price")).alias(Columns.amount),
        pl.coalesce(pl.col("order_id"), synthetic).alias(Columns.order_id),
        pl.col("channel").fill_null("api").alias(Columns.channel),
        pl.lit(None, dtype=pl.String).alias(Columns.store_id),
        reason.alias(Columns.reason),
    )


def implicit_events(frame: pl.DataFrame) -> pl.DataFrame:
    """Return view and click events on items (``customer_id``, ``item_id``, ``timestamp``, ``type``); ids stripped
    as ``validate_events`` strips those of purchase lines."""
    return frame.filter(pl.col("type").is_in(IMPLICIT_KINDS) & pl.col("item_id").is_not_null()).select(
        pl.col("customer_id").str.strip_chars(), pl.col("item_id").str.strip_chars(), "timestamp", "type"
    )


def implicit_rows(store: EventStore) -> pl.DataFrame:
    """Return every view and click in the event store (``implicit_events`` rows), without the history's cache."""
    return implicit_events(store.scan().filter(pl.col("type").is_in(IMPLICIT_KINDS)).collect())


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def _write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _base(base: Path, schema: str, catalog: Path | None, work: Path, summary: HistorySummary) -> LoadResult:
    """Return the validated base file, from the cache when the file, schema and catalog are unchanged."""
    from recsys.data.transactions import load_transactions

    fingerprint = hashlib.sha256(
        "|".join([file_fingerprint(base), schema, file_fingerprint(catalog) if catalog else ""]).encode()
    ).hexdigest()
    folder = work / "base"
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            summary.base_cached = True
            cat = folder / "catalog.parquet"
            report = ValidationReport(**meta["report"])
            catalog_report = ValidationReport(**meta["catalog_report"]) if meta.get("catalog_report") else None
            return LoadResult(
                transactions=pl.read_parquet(folder / "transactions.parquet"),
                returns=pl.read_parquet(folder / "returns.parquet"),
                catalog=pl.read_parquet(cat) if cat.exists() else None,
                report=report,
                catalog_report=catalog_report,
            )
    loaded = load_transactions(base, schema=schema, catalog=catalog, rejects_path=work / "base" / "rejects.csv")
    _write_atomic(loaded.transactions, folder / "transactions.parquet")
    _write_atomic(loaded.returns, folder / "returns.parquet")
    if loaded.catalog is not None:
        _write_atomic(loaded.catalog, folder / "catalog.parquet")
    _write_json(
        {
            "fingerprint": fingerprint,
            "report": dataclasses.asdict(loaded.report),
            "catalog_report": dataclasses.asdict(loaded.catalog_report) if loaded.catalog_report else None,
        },
        meta_path,
    )
    return loaded


def _validated_events(
    store: EventStore, work: Path, summary: HistorySummary, implicit: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return validated event rows (with ``reason``) and implicit rows; parse only files not in the manifest."""
    folder = work / "events"
    manifest_path = work / MANIFEST
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    seen: dict[str, Any] = manifest.get("files", {})
    rows: list[pl.DataFrame] = []
    views: list[pl.DataFrame] = []
    files = store.files()
    for path in files:
        name = f"{path.parent.name}/{path.name}"
        cached, cached_views = folder / name, folder / f"{name}.implicit"
        if name not in seen or not cached.exists():
            frame = pl.read_parquet(path)
            _write_atomic(validate_events(frame), cached)
            _write_atomic(implicit_events(frame), cached_views)
            seen[name] = {"rows": frame.height}
            summary.event_files_parsed += 1
        rows.append(pl.read_parquet(cached))
        if implicit and cached_views.exists():
            views.append(pl.read_parquet(cached_views))
    summary.event_files = len(files)
    _write_json({"files": seen, "checkpoint": store.checkpoint().last_id}, manifest_path)
    empty = validate_events(pl.DataFrame(schema=_event_schema()))
    validated = pl.concat(rows, how="vertical") if rows else empty
    implicit_rows = pl.concat(views, how="vertical") if views else implicit_events(pl.DataFrame(schema=_event_schema()))
    return validated, implicit_rows


def _event_schema() -> dict[str, Any]:
    from recsys.events.store import EVENT_SCHEMA

    return EVENT_SCHEMA


def load_history(
    base: Path,
    store: EventStore | None,
    work: Path,
    *,
    schema: str = "standard",
    catalog: Path | None = None,
    implicit: bool = False,
    rejects_path: Path | None = None,
    shift: dt.timedelta | None = None,
) -> History:
    """Return the history (base file + synced purchases and returns), the event lines alone, and implicit rows.

    The implicit rows (views and clicks, ``customer_id``/``item_id``/``timestamp``/``type``) are empty unless
    ``implicit``. ``shift`` is added to the base file's timestamps (not the events'). Raises ``DataError`` for an
    unusable base file.
    """
    summary = HistorySummary()
    loaded = _base(base, schema, catalog, work, summary)
    if shift:
        loaded = shifted(loaded, shift)
    summary.base_rows = loaded.report.rows_read
    if store is None:
        nothing = implicit_events(pl.DataFrame(schema=_event_schema()))
        return History(
            loaded,
            dataclasses.replace(loaded, transactions=loaded.transactions.clear(), returns=loaded.returns.clear()),
            summary,
            nothing,
        )
    validated, views = _validated_events(store, work, summary, implicit)
    validated = validated.sort("stream_id")
    usable = validated.filter(pl.col(Columns.reason).is_null())
    purchases = usable.filter(pl.col(KIND) == "purchase")
    # a second copy of a line (a retried batch, or an order the base file holds already) counts once
    base_lines = loaded.transactions.select(LINE).unique()
    first = purchases.unique(subset=list(LINE), keep="first", maintain_order=True)
    fresh = first.join(base_lines, on=list(LINE), how="anti", nulls_equal=True)
    duplicates = purchases.height - fresh.height + usable.filter(pl.col(KIND) == "return").height
    returns = usable.filter(pl.col(KIND) == "return").unique(
        subset=[*LINE, Columns.timestamp], keep="first", maintain_order=True
    )
    duplicates -= returns.height
    rejected = validated.filter(pl.col(Columns.reason).is_not_null())
    reasons = dict(rejected.get_column(Columns.reason).value_counts().iter_rows())
    if duplicates:
        reasons[DUPLICATE] = duplicates
    summary.event_rows = validated.height
    summary.event_purchases = fresh.height
    summary.event_returns = returns.height
    summary.event_rejected = reasons
    summary.implicit_rows = views.height
    if rejects_path is not None:
        kept = pl.concat([fresh.select("stream_id"), returns.select("stream_id")])
        dup_rows = usable.join(kept, on="stream_id", how="anti").with_columns(pl.lit(DUPLICATE).alias(Columns.reason))
        out = pl.concat([rejected, dup_rows], how="vertical").select("stream_id", *STANDARD, Columns.reason)
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        out.write_csv(rejects_path)
    columns = list(STANDARD)
    transactions = pl.concat(
        [
            loaded.transactions.cast(pl.Schema(STANDARD)).select(columns),
            fresh.cast(pl.Schema(STANDARD)).select(columns),
        ],
        how="vertical",
    )
    all_returns = pl.concat(
        [loaded.returns.cast(pl.Schema(STANDARD)).select(columns), returns.cast(pl.Schema(STANDARD)).select(columns)],
        how="vertical",
    )
    base_report = loaded.report
    report = ValidationReport(
        source=f"{base_report.source} + {store.root}",
        schema=base_report.schema,
        rows_read=base_report.rows_read + validated.height,
        rows_used=base_report.rows_used + fresh.height + returns.height,
        rows_rejected=base_report.rows_rejected + rejected.height + duplicates,
        reasons={**base_report.reasons, **{k: base_report.reasons.get(k, 0) + v for k, v in reasons.items()}},
        returns=base_report.returns + returns.height,
        rejects_path=str(rejects_path) if rejects_path else None,
    )
    result = LoadResult(
        transactions=transactions,
        returns=all_returns,
        catalog=loaded.catalog,
        report=report,
        catalog_report=loaded.catalog_report,
    )
    events_only = dataclasses.replace(
        result,
        transactions=fresh.cast(pl.Schema(STANDARD)).select(columns),
        returns=returns.cast(pl.Schema(STANDARD)).select(columns),
    )
    return History(result, events_only, summary, views)
