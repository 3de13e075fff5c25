"""The last runs of `centric pipeline run`, read from their reports (``<work>/runs/<run_id>.json``, schema version 1,
documented in docs/pipeline.md): one JSON file per run, written atomically, newest run id last in sort order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

SCHEMA_VERSION = 1
SHOWN = ("run_id", "status", "exit_code", "started_at", "finished_at", "seconds", "snapshot", "error")


def read_runs(work_dir: Path, limit: int = 10) -> list[dict[str, Any]]:
    """Return the newest ``limit`` run reports under ``work_dir/runs`` (newest first), with the fields the dashboard
    shows and the stages' names and statuses. Unreadable files and other schema versions are skipped, not fatal."""
    runs_dir = Path(work_dir) / "runs"
    if not runs_dir.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for path in sorted(runs_dir.glob("*.json"), reverse=True):
        try:
            report = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if not isinstance(report, dict) or report.get("schema_version") != SCHEMA_VERSION:
            continue
        row = {name: report.get(name) for name in SHOWN}
        row["run_id"] = row["run_id"] or path.stem
        row["stages"] = [
            {"name": str(s.get("name")), "status": str(s.get("status")), "seconds": s.get("seconds")}
            for s in report.get("stages") or []
            if isinstance(s, dict)
        ]
        out.append(row)
        if len(out) >= limit:
            break
    return out


async def last_runs(work_dir: Path, limit: int = 10) -> list[dict[str, Any]]:
    """``read_runs`` off the event loop (it reads files)."""
    return await asyncio.to_thread(read_runs, work_dir, limit)
