"""`centric loyalty` commands on a real Redis: reconcile exits non-zero on a mismatch; liability and export work."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from training.cli import app

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"


def test_reconcile_liability_export_commands(redis_url, keys, redis_client, tmp_path):
    ledger = RedisLedger(redis_client, keys, load_program(PROGRAM))
    ledger.earn("c1", "o1", Decimal("40"), [], datetime(2025, 1, 1, tzinfo=UTC), "k1")
    env = {"CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": keys.env, "CENTRIC_LOYALTY_PROGRAM": str(PROGRAM)}
    runner = CliRunner()
    ok = runner.invoke(app, ["loyalty", "reconcile"], env=env)
    assert ok.exit_code == 0, ok.output
    liab = runner.invoke(app, ["loyalty", "liability", "--now", "2025-06-01T00:00:00"], env=env)
    assert liab.exit_code == 0 and '"points_outstanding": 140' in liab.output
    later = runner.invoke(app, ["loyalty", "liability", "--now", "2026-01-02T00:00:00"], env=env)  # past their expiry
    assert later.exit_code == 0 and '"points_outstanding": 0' in later.output
    out = tmp_path / "ledger.parquet"
    assert runner.invoke(app, ["loyalty", "export", "--out", str(out)], env=env).exit_code == 0
    assert pl.read_parquet(out)["amount"].to_list() == [140]
    redis_client.hincrby(keys.loyalty_account("c1"), "balance", 1)
    bad = runner.invoke(app, ["loyalty", "reconcile"], env=env)
    assert bad.exit_code == 1 and "c1" in bad.output
