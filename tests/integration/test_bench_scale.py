"""The 1M-customer benchmark's harness: per-stage measurement, and a whole cycle at a tiny size."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import bench_scale


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
