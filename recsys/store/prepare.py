"""Normalise a ``SnapshotData`` into the shape every store writes: an item table, label codes, sorted lists.

Both store implementations call :func:`prepare`, so the in-memory fake and Redis give the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.exceptions import ArtifactError
from recsys.store.base import SnapshotData
from recsys.store.keys import Fields

ITEM_COLUMNS = ("item_id", "name", "category", "price", "in_stock", "repeat_category")
SIMILAR_LABEL = ("similar", "often bought by the same customers")


def fallback_reason(name: str) -> str:
    """Return the reason shown for items of the fallback list ``name``."""
    if name == Fields.FALLBACK_POPULAR:
        return "popular with all customers"
    if name == Fields.FALLBACK_TRENDING:
        return "trending: bought more often recently"
    if name.startswith(Fields.FALLBACK_CATEGORY_PREFIX):
        return f"popular in {name.removeprefix(Fields.FALLBACK_CATEGORY_PREFIX)}"
    if name.startswith(Fields.FALLBACK_SEGMENT_PREFIX):
        return f"popular with {name.removeprefix(Fields.FALLBACK_SEGMENT_PREFIX)} customers"
    return f"from the {name} list"


@dataclass
class Prepared:
    """The normalised snapshot. ``pos`` columns index ``items``; ``label`` columns index ``labels``."""

    items: pl.DataFrame
    labels: list[tuple[str, str]]
    recs: pl.DataFrame | None  # customer_id, pos, score, label — sorted by customer_id, rank
    similar: pl.DataFrame | None  # item_id (owner), pos, score, label — sorted by owner, rank
    fallbacks: dict[str, pl.DataFrame]  # name -> item_id, score (rank order)
    profiles: pl.DataFrame | None
    decisions: pl.DataFrame | None
    offers: list[dict[str, Any]] | None
    experiments: Any
    model_files: dict[str, bytes]
    dashboard: dict[str, Any] | None = None


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArtifactError(f"{what} lacks column(s) {missing}; it has {frame.columns}. Re-run the job that writes it.")


def _item_universe(data: SnapshotData) -> pl.DataFrame:
    referenced: list[pl.Series] = []
    if data.recommendations is not None:
        referenced.append(data.recommendations.get_column(Columns.item_id).cast(pl.String))
    if data.similar_items is not None:
        referenced.append(data.similar_items.get_column(Columns.item_id).cast(pl.String))
        referenced.append(data.similar_items.get_column("similar_item_id").cast(pl.String).alias(Columns.item_id))
    for frame in (data.fallbacks, data.segment_top_items):
        if frame is not None:
            referenced.append(frame.get_column(Columns.item_id).cast(pl.String))
    if data.items is not None:
        _require(data.items, (Columns.item_id,), "items.parquet")
        known = (
            data.items.select([pl.col(c) for c in ITEM_COLUMNS if c in data.items.columns])
            .with_columns(pl.col(Columns.item_id).cast(pl.String))
            .unique(Columns.item_id, keep="first")
            .sort(Columns.item_id)
        )
    else:
        known = pl.DataFrame({Columns.item_id: pl.Series([], dtype=pl.String)})
    extra = (
        pl.concat(referenced)
        .unique()
        .sort()
        .to_frame(Columns.item_id)
        .join(known.select(Columns.item_id), on=Columns.item_id, how="anti")
        if referenced
        else pl.DataFrame({Columns.item_id: pl.Series([], dtype=pl.String)})
    )
    return (
        pl.concat([known, extra], how="diagonal_relaxed")
        .with_row_index("pos")
        .with_columns(pl.col("pos").cast(pl.UInt32))
    )


def codes_of(series: pl.Series, categories: pl.Series) -> np.ndarray:
    """Return each value's index in ``categories`` (unique, covering every value) — an Enum cast, no join."""
    return series.cast(pl.Enum(categories)).to_physical().to_numpy()


def _ranked_in_order(frame: pl.DataFrame, owner: str) -> pl.DataFrame:
    # Train writes lists sorted by owner then rank; checking that is far cheaper than sorting 20M rows again.
    owners = frame.get_column(owner)
    in_order = (
        owners.is_sorted()
        and frame.select(((pl.col(Columns.rank).diff() > 0) | (pl.col(owner) != pl.col(owner).shift())).all()).item()
    )
    return frame if in_order else frame.sort([owner, Columns.rank])


def _labels(recs: pl.DataFrame) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Return a label code per row (0 is reserved for similar items) and the (source, reason) table."""
    sources = recs.get_column("source").unique(maintain_order=True)
    reasons = recs.get_column("reason").unique(maintain_order=True)
    combo = codes_of(recs.get_column("source"), sources).astype(np.int64) * len(reasons) + codes_of(
        recs.get_column("reason"), reasons
    )
    present, inverse = np.unique(combo, return_inverse=True)
    names_s, names_r = sources.to_list(), reasons.to_list()
    table = [SIMILAR_LABEL] + [(names_s[c // len(reasons)], names_r[c % len(reasons)]) for c in present.tolist()]
    return inverse.astype(np.uint32) + 1, table


def prepare(data: SnapshotData) -> Prepared:
    """Return the normalised snapshot; raises ``ArtifactError`` naming a frame with missing columns."""
    items = _item_universe(data)
    item_ids = items.get_column(Columns.item_id)
    labels: list[tuple[str, str]] = [SIMILAR_LABEL]
    recs = None
    if data.recommendations is not None:
        _require(
            data.recommendations,
            (Columns.customer_id, Columns.item_id, Columns.rank, Columns.score),
            "recommendations.parquet",
        )
        frame = data.recommendations
        recs = frame.select(
            pl.col(Columns.customer_id).cast(pl.String),
            pl.col(Columns.item_id).cast(pl.String),
            pl.col(Columns.rank).cast(pl.Int32),
            pl.col(Columns.score).cast(pl.Float32),
            (pl.col(Columns.source).cast(pl.String) if Columns.source in frame.columns else pl.lit(None, pl.String))
            .fill_null("personalized")
            .alias("source"),
            (pl.col(Columns.reason).cast(pl.String) if Columns.reason in frame.columns else pl.lit(None, pl.String))
            .fill_null("")
            .alias("reason"),
        ).drop_nulls([Columns.customer_id, Columns.item_id])
        recs = _ranked_in_order(recs, Columns.customer_id)
        label_codes, labels = _labels(recs)
        recs = pl.DataFrame(
            {
                Columns.customer_id: recs.get_column(Columns.customer_id),
                "pos": codes_of(recs.get_column(Columns.item_id), item_ids),
                Columns.score: recs.get_column(Columns.score),
                "label": label_codes,
            }
        )
    similar = None
    if data.similar_items is not None:
        _require(
            data.similar_items,
            (Columns.item_id, "similar_item_id", Columns.rank, Columns.score),
            "similar_items.parquet",
        )
        similar = data.similar_items.select(
            pl.col(Columns.item_id).cast(pl.String),
            pl.col("similar_item_id").cast(pl.String),
            pl.col(Columns.rank).cast(pl.Int32),
            pl.col(Columns.score).cast(pl.Float32),
        ).pipe(_ranked_in_order, Columns.item_id)
        similar = pl.DataFrame(
            {
                Columns.item_id: similar.get_column(Columns.item_id),
                "pos": codes_of(similar.get_column("similar_item_id"), item_ids),
                Columns.score: similar.get_column(Columns.score),
                "label": np.zeros(similar.height, dtype=np.uint32),
            }
        )
    fallbacks: dict[str, pl.DataFrame] = {}
    if data.fallbacks is not None:
        _require(data.fallbacks, ("list", Columns.item_id, Columns.rank, Columns.score), "fallbacks.parquet")
        for (name,), part in data.fallbacks.sort("list", Columns.rank).group_by("list", maintain_order=True):
            fallbacks[str(name)] = part.select(
                pl.col(Columns.item_id).cast(pl.String), pl.col(Columns.score).cast(pl.Float32)
            )
    if data.segment_top_items is not None:
        _require(
            data.segment_top_items,
            ("segment", Columns.item_id, Columns.rank, Columns.score),
            "segment_top_items.parquet",
        )
        for (name,), part in data.segment_top_items.sort("segment", Columns.rank).group_by(
            "segment", maintain_order=True
        ):
            fallbacks[Fields.segment_fallback(str(name))] = part.select(
                pl.col(Columns.item_id).cast(pl.String), pl.col(Columns.score).cast(pl.Float32)
            )
    profiles = None
    if data.profiles is not None:
        _require(data.profiles, (Columns.customer_id,), "profiles.parquet")
        profiles = data.profiles.with_columns(pl.col(Columns.customer_id).cast(pl.String)).unique(
            Columns.customer_id, keep="first"
        )
    decisions = None
    if data.decisions is not None:
        _require(data.decisions, (Columns.customer_id, "offer_id"), "decisions.parquet")
        decisions = data.decisions.with_columns(
            pl.col(Columns.customer_id).cast(pl.String), pl.col("offer_id").cast(pl.String)
        )
        if Columns.rank in decisions.columns:
            decisions = decisions.sort([Columns.customer_id, Columns.rank])
    return Prepared(
        items=items.drop("pos"),
        labels=labels,
        recs=recs,
        similar=similar,
        fallbacks=fallbacks,
        profiles=profiles,
        decisions=decisions,
        offers=data.offers,
        experiments=data.experiments,
        model_files=dict(data.model_files),
        dashboard=data.dashboard,
    )
