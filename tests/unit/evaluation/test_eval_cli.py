"""`centric evaluate` end to end on a small standard CSV: results.json, table, one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from training.cli import app


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    n = 3000
    customer = rng.integers(0, 80, n)
    item = np.where(rng.random(n) < 0.6, (customer + rng.integers(0, 4, n)) % 60, rng.integers(0, 120, n))
    day = rng.integers(0, 120, n)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "customer_id": [f"cust-{c}" for c in customer],
            "item_id": [f"sku-{i}" for i in item],
            "timestamp": [
                (start + timedelta(days=int(d), hours=int(c % 12))).isoformat() for c, d in zip(customer, day)
            ],
            "quantity": rng.integers(1, 4, n),
            "price": np.round(rng.random(n) * 10, 2),
            "order_id": [f"o-{c}-{d}" for c, d in zip(customer, day)],
        }
    )
    path = tmp_path_factory.mktemp("eval") / "tx.csv"
    frame.write_csv(path)
    return path


@pytest.mark.parametrize("protocol", ["temporal", "next-basket"])
def test_evaluate_writes_results_json_with_every_model(csv_path: Path, tmp_path: Path, protocol: str) -> None:
    out = tmp_path / "results.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--transactions",
            str(csv_path),
            "--protocol",
            protocol,
            "--models",
            "popularity,buy_again,trending",
            "--test-days",
            "20",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["protocol"] == protocol
    assert set(doc["models"]) == {"popularity", "buy_again", "trending"}
    assert {"ndcg@10", "recall@10", "explore_recall@10", "repeat_recall@10", "fit_seconds"} <= set(
        doc["models"]["buy_again"]
    )
    assert "buy_again" in result.output  # the results table


def test_unknown_model_and_protocol_are_one_line_errors(csv_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_model = runner.invoke(
        app, ["evaluate", "--transactions", str(csv_path), "--models", "nope", "--out", str(tmp_path / "r.json")]
    )
    assert bad_model.exit_code == 2 and "unknown model" in bad_model.output and "Traceback" not in bad_model.output
    bad_protocol = runner.invoke(app, ["evaluate", "--transactions", str(csv_path), "--protocol", "random"])
    assert bad_protocol.exit_code == 2 and "--protocol" in bad_protocol.output
