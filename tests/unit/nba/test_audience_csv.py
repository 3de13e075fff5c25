"""The audience CSV (UI download and `centric campaign select`): spreadsheet formulas in text cells are neutralised."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl

from recsys.nba.audience import select_audience
from serving.services.campaign_view import audience_csv
from training.jobs.campaign import run_select

IDS = ['=HYPERLINK("http://evil.example","x")', "+1-555", "-2+3", "@SUM(A1)", "\tcmd", "plain", "a=b"]


def _decisions() -> pl.DataFrame:
    n = len(IDS)
    return pl.DataFrame(
        {
            "customer_id": IDS,
            "channel": ["app"] * n,
            "offer_id": ["o1"] * n,
            "expected_value": [-1.5 - i for i in range(n)],  # negative numbers stay numbers
            "p_accept": [0.1] * n,
        }
    )


def _rows(raw: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(raw.decode())))


def test_audience_csv_neutralises_cells_a_spreadsheet_would_run_as_formulas() -> None:
    rows = _rows(audience_csv(select_audience(_decisions(), "o1", budget=10)))
    by_value = {r["expected_value"]: r["customer_id"] for r in rows}
    assert by_value["-1.5"] == "'" + IDS[0]
    assert [by_value[str(-1.5 - i)] for i in range(1, 5)] == ["'+1-555", "'-2+3", "'@SUM(A1)", "'\tcmd"]
    assert by_value["-6.5"] == "plain" and by_value["-7.5"] == "a=b"  # only a leading sign is a formula
    assert not any(r["customer_id"][0] in "=+-@\t" for r in rows)


def test_campaign_select_writes_the_same_neutralised_csv_as_the_download(tmp_path: Path) -> None:
    _decisions().write_parquet(tmp_path / "decisions.parquet")
    (tmp_path / "offers.json").write_text(json.dumps([{"id": "o1"}]))
    run_select(tmp_path, "o1", 10, tmp_path / "audience.csv")
    written = (tmp_path / "audience.csv").read_bytes()
    assert written == audience_csv(select_audience(_decisions(), "o1", budget=10))
    assert "'=HYPERLINK" in written.decode()
