"""The pipeline's config: file < environment < flags, with errors naming the file, section, option and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.exceptions import ConfigError
from training.pipeline.config import load_config
from training.pipeline.state import RunReport, StageReport, list_runs

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "centric.toml"


def test_flags_win_over_environment_over_file(tmp_path: Path) -> None:
    config = load_config(
        EXAMPLE,
        {"k": 5, "tolerance": None},
        {"CENTRIC_PIPELINE_K": "7", "CENTRIC_PIPELINE_TOLERANCE": "0.2", "CENTRIC_PIPELINE_WORK_DIR": str(tmp_path)},
    )
    assert (config.k, config.tolerance, config.work_dir, config.transactions) == (5, 0.2, str(tmp_path), "demo")
    assert config.offers == str(EXAMPLE.parent / "offers.toml")


def test_a_bad_option_is_named_with_its_file_and_section(tmp_path: Path) -> None:
    bad = tmp_path / "centric.toml"
    bad.write_text("[train]\nk = 'many'\n")
    with pytest.raises(ConfigError, match=r"centric.toml \[train\]: k = 'many'"):
        load_config(bad, environ={})
    bad.write_text("[train]\nepochs = 3\n")
    with pytest.raises(ConfigError, match="epochs is not an option"):
        load_config(bad, environ={})


def test_run_reports_are_listed_newest_first(tmp_path: Path) -> None:
    for run_id in ("20261201T000000Z-aaaaaa", "20261202T000000Z-bbbbbb"):
        RunReport(run_id, "2026-12-01T00:00:00+00:00", str(tmp_path), {}, stages=[StageReport("sync")]).save(tmp_path)
    runs = list_runs(tmp_path)
    assert [r["run_id"] for r in runs] == ["20261202T000000Z-bbbbbb", "20261201T000000Z-aaaaaa"]
    assert list(runs[0])[:7] == [
        "schema_version",
        "run_id",
        "status",
        "exit_code",
        "started_at",
        "finished_at",
        "seconds",
    ]
