"""The publish job: an artifact directory → a verified, atomically activated snapshot version in Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.analytics.dashboard import build_dashboard
from recsys.exceptions import ArtifactError, DataError
from recsys.store.base import SnapshotData
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from training.jobs.score_shards import merged as merged_shards

FRAMES = {
    "recommendations": "recommendations.parquet",
    "similar_items": "similar_items.parquet",
    "fallbacks": "fallbacks.parquet",
    "items": "items.parquet",
    "profiles": "profiles.parquet",
    "segment_top_items": "segment_top_items.parquet",
    "decisions": "decisions.parquet",
}
# Models whose artifacts serve fold-in (``recommend_from_items``); others are not needed by the service.
FOLDIN_MODELS = ("als",)
MAX_MODEL_BYTES = 512 << 20
# An evaluation written into the artifact directory (`centric evaluate --out DIR/evaluation.json`) is published
# with the snapshot for the dashboard's model-quality page.
EVALUATION_FILES = ("evaluation.json", "results.json")
# The analysis summary, then a CLV check run with a holdout period (``clv_check/``, written by `centric demo`).
SUMMARY_FILES = ("summary.json", "clv_check/summary.json")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not readable JSON ({exc}); re-run the job that writes it") from exc


def _model_files(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    files: dict[str, bytes] = {}
    for stem in FOLDIN_MODELS:
        json_path, npz_path = directory / f"{stem}.json", directory / f"{stem}.npz"
        if json_path.exists() and npz_path.exists():
            if npz_path.stat().st_size > MAX_MODEL_BYTES:
                continue  # too large to ship through Redis; fold-in is then unavailable
            files[json_path.name] = json_path.read_bytes()
            files[npz_path.name] = npz_path.read_bytes()
    return files


def load_artifacts(artifact_dir: Path) -> tuple[SnapshotData, list[str]]:
    """Read whatever artifact files exist; return the snapshot data and the names of the files taken.

    Raises ``DataError`` when the directory is missing or holds nothing publishable, ``ArtifactError`` for
    unreadable files.
    """
    artifact_dir = Path(artifact_dir)
    if not artifact_dir.is_dir():
        raise DataError(
            f"artifact directory {artifact_dir} does not exist; run `centric train --out {artifact_dir}` first"
        )
    data = SnapshotData()
    taken: list[str] = []
    for attr, name in FRAMES.items():
        path = artifact_dir / name
        if path.exists():
            try:
                setattr(data, attr, pl.read_parquet(path))
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise ArtifactError(f"{path} cannot be read as Parquet ({exc}); re-run the job that writes it") from exc
            taken.append(name)
    for attr, name in (
        ("offers", "offers.json"),
        ("experiments", "experiments.json"),
        ("manifest", "train_manifest.json"),
    ):
        path = artifact_dir / name
        if path.exists():
            setattr(data, attr, _read_json(path))
            taken.append(name)
    sharded = merged_shards(artifact_dir)  # `centric score --shard i/n`: all shards verified, or DataError
    if sharded is not None:
        data.recommendations = sharded[0]
        taken = [name for name in taken if name != FRAMES["recommendations"]] + sharded[1]
    evaluation = next((_read_json(artifact_dir / n) for n in EVALUATION_FILES if (artifact_dir / n).exists()), None)
    summaries = [_read_json(artifact_dir / n) for n in SUMMARY_FILES if (artifact_dir / n).exists()]
    summary = dict(summaries[0]) if summaries else {}
    # the CLV check: the analysis's own holdout, else the one of a separate check run (`centric demo` makes one)
    summary["holdout"] = next((s["holdout"] for s in summaries if s.get("holdout")), None)
    data.dashboard = build_dashboard(
        data.profiles,
        summary=summary,
        evaluation=evaluation,
        train_manifest=data.manifest,
        models=_read_json(artifact_dir / "models.json") if (artifact_dir / "models.json").exists() else None,
    )
    data.model_files = _model_files(artifact_dir / "recommender")
    taken += [f"recommender/{n}" for n in sorted(data.model_files)]
    if not any(getattr(data, attr) is not None for attr in FRAMES):
        raise DataError(
            f"{artifact_dir} holds none of {', '.join(FRAMES.values())}; run `centric train` / `centric analyze` "
            f"with --out {artifact_dir}"
        )
    return data, taken


def run_publish(
    client: redis.Redis,
    keys: Keys,
    artifact_dir: Path,
    *,
    keep: int = 3,
    ttl_s: int = 7 * 86_400,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Publish ``artifact_dir`` as a new active version; return ``{version, files, counts, checksums, seconds, …}``.

    Raises ``DataError``/``ArtifactError`` for unusable artifacts, ``Conflict`` when another publish runs,
    ``StoreUnavailable`` when Redis fails. On any failure the previous version stays active.
    """
    data, taken = load_artifacts(Path(artifact_dir))
    report = RedisSnapshotStore(client, keys).publish(data, keep=keep, ttl_s=ttl_s, progress=progress)
    return {
        "version": report.version,
        "files": taken,
        "counts": report.counts,
        "checksums": report.checksums,
        "seconds": round(report.seconds, 2),
        "removed_versions": report.removed_versions,
        "notes": report.notes,
    }
