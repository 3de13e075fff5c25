"""``run_experiment_report``: conversion and revenue per arm of an experiment, with lift and 95 % CIs.

Population (intention to treat): every customer in the artifact directory's ``profiles.parquet`` (or
``decisions.parquet``), assigned to arms by the experiment's hash, so the holdout is counted even
though it never sees an offer. Outcomes come from events (the ``POST /v1/events`` stream in Redis, or
a file): a customer converts with at least one ``purchase`` event (``--metric redeem``: a ``redeem`` of
one of the experiment's offers); revenue is Σ price × quantity of their purchases.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.columns import Columns
from recsys.exceptions import ArtifactError, DataError, NotFound
from recsys.nba.experiments import experiment_from_dict, report
from recsys.nba.fields import NbaFields
from recsys.nba.segment_lift import DIMENSIONS, segment_lifts
from recsys.store.keys import Keys

EVENT_SCHEMA = {
    "type": pl.String,
    "customer_id": pl.String,
    "offer_id": pl.String,
    "price": pl.Float64,
    "quantity": pl.Float64,
}


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_events(client: redis.Redis, keys: Keys, store_dir: Path) -> pl.DataFrame:
    """Return every event: those the event store holds (``centric events sync``), then the stream's newer ones."""
    from recsys.events.store import EventStore

    store = EventStore(store_dir)
    last_id = store.checkpoint().last_id
    stored = store.scan().select(list(EVENT_SCHEMA)).collect()
    newer = read_event_stream(client, keys, after=last_id)
    return pl.concat([stored.cast(EVENT_SCHEMA), newer], how="vertical")  # type: ignore[arg-type]


def read_event_stream(client: redis.Redis, keys: Keys, batch: int = 10_000, after: str | None = None) -> pl.DataFrame:
    """Return the events stream's events (after stream id ``after``; flat fields or one JSON field per entry)."""
    rows: list[dict[str, Any]] = []
    start = "-" if after is None or after == "0-0" else f"({after}"
    while True:
        entries = client.xrange(keys.events_stream(), min=start, count=batch)
        for _entry_id, fields in entries:
            flat = {_decode(k): _decode(v) for k, v in fields.items()}
            payload = flat.get("data") or flat.get("event")
            events = json.loads(payload) if payload else flat
            rows.extend(events if isinstance(events, list) else [events])
        if len(entries) < batch:
            break
        start = "(" + _decode(entries[-1][0])
    return events_frame(rows)


def events_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Return events as a typed frame (``type``, ``customer_id``, ``offer_id``, ``price``, ``quantity``)."""
    cleaned = [{name: row.get(name) for name in EVENT_SCHEMA} for row in rows]
    return pl.DataFrame(cleaned, schema={n: pl.String for n in EVENT_SCHEMA}).with_columns(
        pl.col("price").cast(pl.Float64, strict=False), pl.col("quantity").cast(pl.Float64, strict=False)
    )


def read_event_file(path: Path) -> pl.DataFrame:
    """Read events from parquet, CSV or JSON lines; raises ``DataError`` if unreadable or lacking
    ``type``/``customer_id``."""
    try:
        frame = (
            pl.read_parquet(path)
            if path.suffix == ".parquet"
            else pl.read_ndjson(path)
            if path.suffix in (".jsonl", ".ndjson")
            else pl.read_csv(path)
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot read events: {exc}") from None
    missing = {"type", "customer_id"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: events need columns {sorted(missing)}")
    return events_frame(frame.to_dicts())


def run_experiment_report(
    experiment_id: str,
    artifact_dir: Path,
    events: pl.DataFrame,
    *,
    metric: str = "purchase",
    control: str | None = None,
    loyalty: Path | None = None,
) -> dict[str, Any]:
    """Return ``{"experiment", "control", "metric", "arms": [ArmResult as dict]}``.

    Raises ``NotFound`` for an unknown experiment, ``ArtifactError`` when the artifacts are missing.
    """
    artifact_dir = Path(artifact_dir)
    exp_path = artifact_dir / "experiments.json"
    if not exp_path.exists():
        raise ArtifactError(f"{exp_path} not found; run `centric decide --out {artifact_dir}` first")
    known = json.loads(exp_path.read_text())
    raw = next((e for e in known if e.get("id") == experiment_id), None)
    if raw is None:
        raise NotFound(f"experiment {experiment_id!r} is not in {exp_path}; known: {[e.get('id') for e in known]}")
    experiment = experiment_from_dict(
        {k: v for k, v in raw.items() if k != "arms"} | {"arms": raw["arms"]}, str(exp_path)
    )
    source = next(
        (artifact_dir / n for n in ("profiles.parquet", "decisions.parquet") if (artifact_dir / n).exists()), None
    )
    if source is None:
        raise ArtifactError(
            f"{artifact_dir}: no profiles.parquet or decisions.parquet to take the customer population from"
        )
    customers = (
        pl.read_parquet(source, columns=[Columns.customer_id])
        .get_column(Columns.customer_id)
        .cast(pl.String)
        .unique()
        .sort()
    )
    assignments = pl.DataFrame({Columns.customer_id: customers, "arm": experiment.assign(customers.to_list())})
    segments = _segments(source, loyalty)
    holdouts = sorted(experiment.holdout_arms())
    control = control or (holdouts[0] if holdouts else experiment.arms[-1].name)
    purchases = (
        events.filter(pl.col("type") == "purchase")
        .group_by(Columns.customer_id)
        .agg((pl.col("price").fill_null(0.0) * pl.col("quantity").fill_null(1.0)).sum().alias("revenue"))
    )
    if metric == "redeem":
        redeemed = events.filter(pl.col("type") == "redeem")
        if experiment.offers:
            redeemed = redeemed.filter(pl.col("offer_id").is_in(list(experiment.offers)))
        converted = redeemed.select(Columns.customer_id).unique()
    else:
        converted = purchases.select(Columns.customer_id)
    outcomes = converted.with_columns(pl.lit(True).alias("converted")).join(
        purchases, on=Columns.customer_id, how="full", coalesce=True
    )
    results = report(assignments, outcomes, control)
    by_segment = segment_lifts(assignments.join(segments, on=Columns.customer_id, how="left"), outcomes, control)
    return {
        "experiment": experiment_id,
        "control": control,
        "metric": metric,
        "arms": [asdict(r) for r in results],
        "segments": by_segment,
    }


def _segments(source: Path, loyalty: Path | None) -> pl.DataFrame:
    """Return ``customer_id`` with the segment columns the profiles (and a loyalty snapshot's ``tier``) hold."""
    available = pl.read_parquet_schema(source)
    wanted = [c for c in DIMENSIONS.values() if c in available]
    frame = pl.read_parquet(source, columns=[Columns.customer_id, *wanted]).with_columns(
        pl.col(Columns.customer_id).cast(pl.String)
    )
    if loyalty is not None:
        tiers = (pl.read_csv(loyalty) if Path(loyalty).suffix == ".csv" else pl.read_parquet(loyalty)).select(
            pl.col(Columns.customer_id).cast(pl.String), pl.col(NbaFields.tier).cast(pl.String)
        )
        frame = frame.drop(NbaFields.tier, strict=False).join(tiers, on=Columns.customer_id, how="left")
    return frame.unique(Columns.customer_id)
