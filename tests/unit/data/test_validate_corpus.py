"""The `centric validate` contract on a corpus of malformed files generated here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tests.helpers.data_corpus import GOOD, HEADER, ROW_CASES, WHOLE_FILE_PROBLEMS, row_case_file
from training.cli import app

runner = CliRunner()


def _validate(*args: str) -> object:
    return runner.invoke(app, ["validate", *args])


@pytest.mark.parametrize("name", sorted(WHOLE_FILE_PROBLEMS))
def test_whole_file_problem_exits_2_with_one_line_naming_the_file(name: str, tmp_path: Path) -> None:
    make, word = WHOLE_FILE_PROBLEMS[name]
    path = make(tmp_path)
    result = _validate("--transactions", str(path))
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "Traceback" not in result.output
    assert message.startswith("error:")
    assert path.name in message
    assert word.lower() in message.lower(), message
    assert " — " in message, "the message must say what to do"


@pytest.mark.parametrize("name", ["missing_file", "binary_garbage", "wrong_columns"])
def test_json_mode_also_fails_with_one_line_on_stderr(name: str, tmp_path: Path) -> None:
    make, _ = WHOLE_FILE_PROBLEMS[name]
    result = _validate("--transactions", str(make(tmp_path)), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) >= 1 and "Traceback" not in result.stderr


def test_real_command_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.cli", "validate", "--transactions", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "nope.csv" in proc.stderr


def test_row_problems_are_rejected_with_row_number_and_reason(tmp_path: Path) -> None:
    path = row_case_file(tmp_path)
    rejects = tmp_path / "rejects.csv"
    result = _validate("--transactions", str(path), "--rejects", str(rejects), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    expected = {i + 1: reason for i, (_, reason) in enumerate(ROW_CASES) if reason is not None}
    assert summary["rows_read"] == len(ROW_CASES)
    assert summary["rows_rejected"] == len(expected)
    assert summary["rows_used"] + summary["rows_rejected"] == summary["rows_read"]
    got = pl.read_csv(rejects, infer_schema=False)
    assert dict(zip(got["row"].cast(int), got["reason"], strict=True)) == expected
    counts: dict[str, int] = {}
    for reason in expected.values():
        counts[reason] = counts.get(reason, 0) + 1
    assert summary["reasons"] == dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def test_rejects_keep_the_original_values(tmp_path: Path) -> None:
    path = row_case_file(tmp_path)
    rejects = tmp_path / "rejects.csv"
    _validate("--transactions", str(path), "--rejects", str(rejects))
    got = pl.read_csv(rejects, infer_schema=False).filter(pl.col("reason") == "negative_price")
    assert got.row(0, named=True)["price"] == "-0.01"
    assert got.row(0, named=True)["customer_id"] == "c19"


def test_strict_exits_1_when_a_row_is_rejected(tmp_path: Path) -> None:
    assert _validate("--transactions", str(row_case_file(tmp_path)), "--strict").exit_code == 1
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + GOOD)
    assert _validate("--transactions", str(clean), "--strict").exit_code == 0


def test_readable_summary_without_json(tmp_path: Path) -> None:
    result = _validate("--transactions", str(row_case_file(tmp_path)))
    assert result.exit_code == 0
    assert "rejected" in result.stdout and "unparsable_timestamp" in result.stdout


def test_delimiter_option_reads_semicolon_files(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(HEADER.replace(",", ";") + GOOD.replace(",", ";"))
    result = _validate("--transactions", str(path), "--delimiter", ";", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_used"] == 1


def test_unknown_schema_is_a_one_line_error(tmp_path: Path) -> None:
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + GOOD)
    result = _validate("--transactions", str(clean), "--schema", "excel")
    assert result.exit_code == 2
    assert "standard" in result.stderr and "online-retail" in result.stderr
