"""Gather the shards of ``centric score --shard i/n`` for publish: every shard arrived, each verified, or nothing.

A shard counts as arrived when its ``shard.json`` exists (``score_shard`` writes it after its file). Before anything
is written to Redis, every shard must: belong to one split (the same ``n``), exist for every ``i`` in ``0..n-1``,
come from the model that ``train_manifest.json`` names (same data fingerprint, same customer count), cover its
customer range so that the ranges tile ``[0, customers)``, and have a file whose row count and sha256 match its
manifest. Any miss raises ``DataError`` naming the shards and what to run; the active version stays as it is.
The merged frame then goes through the ordinary publish (write, verify counts, activate one pointer), so the
version with the shards' recommendations becomes visible all at once or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import DataError
from training.jobs.score import RECS_FILE, SHARD_MANIFEST, SHARDS_DIR, file_sha256, read_train_manifest


def _manifests(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(root.glob(f"*/{SHARD_MANIFEST}")):
        try:
            found.append((path.parent, dict(json.loads(path.read_text()))))
        except ValueError as exc:
            raise DataError(f"{path} is not readable JSON ({exc}); re-run that shard's `centric score`") from exc
    return found


def merged(artifact_dir: Path) -> tuple[pl.DataFrame, list[str]] | None:
    """Return (the recommendations of every shard, in customer order; the files taken), or ``None`` without shards.

    Raises ``DataError`` when a shard is missing, of another split or model, or its file does not verify.
    """
    root = Path(artifact_dir) / SHARDS_DIR
    shards = _manifests(root) if root.is_dir() else []
    if not shards:
        return None
    counts = sorted({int(info["of"]) for _, info in shards})
    if len(counts) != 1:
        raise DataError(
            f"{root} holds shards of {len(counts)} different splits (n = {', '.join(map(str, counts))}); delete the "
            "old split's directories and publish again"
        )
    count = counts[0]
    by_index = {int(info["shard"]): (path, info) for path, info in shards}
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        listed = ", ".join(f"{i}/{count}" for i in missing)
        raise DataError(
            f"{len(missing)} of {count} shards have not arrived in {root} ({listed}); run `centric score --shard "
            f"{missing[0]}/{count}` for each, then publish again. Nothing was published."
        )
    manifest = read_train_manifest(Path(artifact_dir))
    fingerprint = manifest.get("data_fingerprint")
    frames, taken, expected_start = [], [], 0
    for index in range(count):
        path, info = by_index[index]
        where = f"shard {index}/{count} ({path})"
        if info.get("data_fingerprint") != fingerprint:
            raise DataError(
                f"{where} was scored with a model of other data than {artifact_dir}/train_manifest.json "
                f"(a shard of an earlier train?); re-run `centric score --shard {index}/{count}`"
            )
        start, stop = (int(x) for x in info["customers"])
        if start != expected_start:
            raise DataError(f"{where} starts at customer {start}, expected {expected_start}; re-run it")
        expected_start = stop
        recorded = info["files"][RECS_FILE]
        file = path / RECS_FILE
        if not file.exists() or file_sha256(file) != recorded["sha256"]:
            raise DataError(f"{where}: {RECS_FILE} is missing or changed since it was scored; re-run that shard")
        frame = pl.read_parquet(file)
        if frame.height != int(recorded["rows"]):
            raise DataError(f"{where}: {frame.height} rows, its manifest says {recorded['rows']}; re-run it")
        frames.append(frame)
        taken.append(f"{SHARDS_DIR}/{path.name}/{RECS_FILE}")
    total = int(by_index[0][1].get("customers_total", expected_start))
    if expected_start != total:
        raise DataError(f"the {count} shards in {root} cover customers 0..{expected_start}, not all {total}")
    return pl.concat(frames, how="vertical"), taken
