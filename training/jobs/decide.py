"""``run_decide``: read profiles (+ recommendations, items, optional loyalty snapshot), decide, write artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import DataError
from recsys.nba.decision import build_frame, decide
from recsys.nba.offers import load_catalog
from recsys.nba.propensity import LogisticPropensity


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def run_decide(
    out_dir: Path,
    offers_path: Path,
    *,
    profiles_path: Path | None = None,
    loyalty_path: Path | None = None,
    propensity_path: Path | None = None,
) -> dict[str, Any]:
    """Write ``decisions.parquet``, ``offers.json`` and ``experiments.json`` into ``out_dir``; return a summary.

    ``profiles_path`` defaults to ``out_dir/profiles.parquet``; ``recommendations.parquet`` and
    ``items.parquet`` in ``out_dir`` are used for affinity when present. ``loyalty_path`` (parquet/csv:
    ``customer_id``, ``tier``, ``points_balance``, ``points_to_next_tier``, ``complaints``) is optional:
    without it every customer counts as base tier with 0 points and no complaints. ``propensity_path``: a
    model saved by ``LogisticPropensity.save``; without it the documented prior is used.
    Raises ``ConfigError`` (catalog), ``DataError`` (inputs) or ``ArtifactError`` (model).
    """
    out_dir = Path(out_dir)
    catalog = load_catalog(offers_path)
    profiles_path = Path(profiles_path) if profiles_path else out_dir / "profiles.parquet"
    if not profiles_path.exists():
        raise DataError(
            f"{profiles_path}: profiles not found; run `centric analyze --out {out_dir}` first or pass --profiles"
        )
    frame = build_frame(_read(profiles_path), _read(Path(loyalty_path)) if loyalty_path else None)
    recs_path, items_path = out_dir / "recommendations.parquet", out_dir / "items.parquet"
    recommendations = _read(recs_path) if recs_path.exists() else None
    items = _read(items_path) if items_path.exists() else None
    model = LogisticPropensity.load(propensity_path) if propensity_path else None
    result = decide(frame, catalog, recommendations=recommendations, items=items, model=model)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.decisions.write_parquet(out_dir / "decisions.parquet")
    (out_dir / "offers.json").write_text(json.dumps([o.to_dict() for o in catalog.offers], indent=2))
    (out_dir / "experiments.json").write_text(json.dumps([e.to_dict() for e in catalog.experiments], indent=2))
    return result.summary
