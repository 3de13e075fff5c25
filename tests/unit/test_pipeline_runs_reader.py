"""The dashboard's reader of `centric pipeline` run reports (schema version 1, docs/pipeline.md)."""

from __future__ import annotations

import json
from pathlib import Path

from serving.services.pipeline_runs import read_runs


def _report(run_id: str, status: str, **extra: object) -> dict[str, object]:
    return {
        "schema_version": 1,
        "run_id": run_id,
        "status": status,
        "exit_code": 0 if status == "succeeded" else 1,
        "started_at": f"2026-12-0{run_id[7]}T22:15:03+00:00",
        "finished_at": None,
        "seconds": 97.75,
        "snapshot": {"before": None, "after": "v1"},
        "stages": [{"name": "sync", "status": "done", "seconds": 0.1}, {"name": "train", "status": "failed"}],
        "error": None,
        **extra,
    }


def test_newest_runs_first_and_bad_or_foreign_files_are_skipped(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    for run_id, status in (("20261201T2215Z-a", "succeeded"), ("20261203T2215Z-b", "failed")):
        (runs / f"{run_id}.json").write_text(json.dumps(_report(run_id, status, future_field=1)))
    (runs / "20261204T0000Z-c.json").write_text("{not json")
    (runs / "20261205T0000Z-d.json").write_text(
        json.dumps({**_report("20261205T0000Z-d", "running"), "schema_version": 2})
    )
    found = read_runs(tmp_path)
    assert [r["run_id"] for r in found] == ["20261203T2215Z-b", "20261201T2215Z-a"]
    assert found[0]["status"] == "failed" and found[0]["stages"][1] == {
        "name": "train",
        "status": "failed",
        "seconds": None,
    }
    assert read_runs(tmp_path, limit=1)[0]["run_id"] == "20261203T2215Z-b"
    assert read_runs(tmp_path / "nowhere") == []
