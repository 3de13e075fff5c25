"""The 1M-customer benchmark's harness: per-stage measurement, and a whole cycle at a tiny size."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import bench_scale_1m as bench_scale


def test_a_stage_reports_its_own_exit_code_and_peak_memory(tmp_path: Path) -> None:
    grab = "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); raise SystemExit(3)"
    result = bench_scale.run_measured("grab", [sys.executable, "-c", grab], {}, tmp_path / "log", timeout_s=60)
    assert result.exit_code == 3
    assert 300 <= result.peak_mb < 600  # the child's 300 MB, not the test process's memory


def test_a_stage_past_its_timeout_is_killed(tmp_path: Path) -> None:
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    result = bench_scale.run_measured("sleep", sleep, {}, tmp_path / "log", timeout_s=1)
    assert result.exit_code == bench_scale.KILLED_TIMEOUT
    assert result.seconds < 30


@pytest.mark.slow
def test_tiny_cycle_runs_every_stage_through_the_cli_and_draws_the_curve(tmp_path: Path, capsys) -> None:
    results, png = tmp_path / "scale.json", tmp_path / "curve.png"
    argv = ["--customers", "200", "--items", "80", "--primary", "hybrid", "--data-dir", str(tmp_path / "data")]
    argv += ["--work-dir", str(tmp_path), "--results", str(results), "--plot", str(png)]
    assert bench_scale.main(argv) == 0
    [row] = json.loads(results.read_text())
    assert [s["name"] for s in row["stages"]] == list(bench_scale.STAGES)
    assert all(s["exit_code"] == 0 and s["seconds"] > 0 and s["peak_mb"] > 50 for s in row["stages"])
    assert row["redis_used_mb"] > 0 and row["complete"]
    assert row["yardstick"]["rows"] == 200 and row["yardstick"]["fit_s"] > 0
    assert (Path(row["work_dir"]) / "artifacts" / "recommendations.parquet").exists()
    assert png.stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "| 200 customers, 80 items" in out and "implicit ALS fit + recommend" in out


def test_a_stage_past_the_memory_cap_is_killed_before_it_grows_further(tmp_path: Path) -> None:
    grow = "import time\nchunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20)); time.sleep(0.01)"
    result = bench_scale.run_measured(
        "grow", [sys.executable, "-c", grow], {}, tmp_path / "log", timeout_s=60, rss_cap_mb=400
    )
    assert result.exit_code == bench_scale.KILLED_MEMORY
    assert 400 <= result.peak_mb < 1500


def test_the_table_names_how_a_stage_was_stopped_and_the_ratio_to_the_yardstick() -> None:
    from benchmarks.scale_report import KILLED_MEMORY, table

    def stage(name: str, code: int) -> dict:
        return {"name": name, "command": "python -m training.cli x", "seconds": 10.0, "cpu_s": 2.0, "peak_mb": 100.0,
                "exit_code": code, "load_before": "1.0", "load_after": "1.0"}  # fmt: skip

    row = {"customers": 10, "items": 5, "lines": 100, "primary": "hybrid", "complete": False, "total_s": 30.0,
           "peak_mb": 100.0, "redis_used_mb": 1.0, "stages": [stage("validate", 0), stage("train", -9),
           stage("analyze", KILLED_MEMORY)], "yardstick": {"total_s": 10.0, "fit_s": 6.0, "recommend_s": 4.0,
           "cpu_s": 3.0, "peak_mb": 50.0, "load_before": "1.0", "load_after": "1.0"}}  # fmt: skip
    text = table([row])
    assert "killed: SIGKILL (the kernel's OOM killer)" in text
    assert "killed: memory cap" in text
    assert "**incomplete**" in text and "**3.0×**" in text
