"""`centric analyze` end to end on a small standard-schema CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.cdnow import read_cdnow


def test_analyze_command_writes_artifacts_and_prints_summary(shared_data: Path, tmp_path: Path) -> None:
    from training.cli import app

    tx = read_cdnow(shared_data / "cdnow" / "CDNOW_sample.txt")
    path = tmp_path / "tx.csv"
    tx.select("customer_id", "item_id", "timestamp", "quantity", "price", "order_id").write_csv(path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "analyze",
            "--transactions",
            str(path),
            "--schema",
            "standard",
            "--calibration-end",
            "1997-09-30",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lifecycle" in result.output
    models = json.loads((out / "models.json").read_text())
    assert models["bgnbd"]["r"] == pytest.approx(0.243, rel=0.005)
    assert (out / "plots" / "calibration_holdout.png").exists()


def test_analyze_command_reports_bad_calibration_end_in_one_line(shared_data: Path, tmp_path: Path) -> None:
    from training.cli import app

    path = tmp_path / "tx.csv"
    read_cdnow(shared_data / "cdnow" / "CDNOW_sample.txt").select(
        "customer_id", "item_id", "timestamp", "quantity", "price"
    ).write_csv(path)
    result = CliRunner().invoke(
        app, ["analyze", "--transactions", str(path), "--calibration-end", "30/09/1997", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_analyze_command_forces_a_clv_model_and_refuses_an_unknown_one(shared_data: Path, tmp_path: Path) -> None:
    from training.cli import app

    path = tmp_path / "tx.csv"
    read_cdnow(shared_data / "cdnow" / "CDNOW_sample.txt").select(
        "customer_id", "item_id", "timestamp", "quantity", "price"
    ).write_csv(path)
    out = tmp_path / "out"
    args = ["analyze", "--transactions", str(path), "--out", str(out), "--no-plots", "--holdout-fraction", "0.25"]
    result = CliRunner().invoke(app, [*args, "--clv-model", "mbgnbd"])
    assert result.exit_code == 0, result.output
    assert "mbgnbd (chosen)" in result.output
    models = json.loads((out / "models.json").read_text())
    assert models["clv_model"]["name"] == "mbgnbd"
    assert "25 % holdout" in models["model_selection"]["split"]["rule"]
    bad = CliRunner().invoke(app, [*args, "--clv-model", "pareto"])
    assert bad.exit_code != 0
    assert "unknown CLV model 'pareto'" in bad.output and "Traceback" not in bad.output
