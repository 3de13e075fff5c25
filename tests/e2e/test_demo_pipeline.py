"""``centric demo``: the pipeline's stages end to end on a sample of the real demo data, against a real Redis."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from training.jobs.demo import run_demo
from training.pipeline.state import STAGES

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_pipeline_stage_and_publishes(redis_url: str, keys: Keys, tmp_path: Path) -> None:
    client = sync_client(redis_url)
    try:
        result = run_demo(
            client,
            keys,
            tmp_path / "artifacts",
            loyalty_program=ROOT / "examples" / "loyalty.toml",
            offers_catalog=ROOT / "examples" / "offers.toml",
            customers=120,
        )
    finally:
        client.close()
    names = [stage.name for stage in result.stages]
    assert names == list(STAGES)  # the same stages as `centric pipeline run`
    assert {stage.status for stage in result.stages} == {"done"}
    assert result.report is not None and result.report.status == "succeeded"
    load = result.stages[1].summary
    assert load["customers"] == 120
    assert load["rows_used"] + load["rows_rejected"] == load["rows_read"]
    recs = pl.read_parquet(result.artifact_dir / "recommendations.parquet")
    assert recs.get_column("customer_id").n_unique() == 120
    profiles = pl.read_parquet(result.artifact_dir / "profiles.parquet")
    assert profiles.height == 120
    assert result.api_key and len(result.api_key) >= 20
    by_name = {stage.name: stage.summary for stage in result.stages}
    decided = by_name["decide"]
    assert decided["propensity auc"] > 0.7 and decided["propensity learner"] == "logistic"
    assert decided["propensity"].startswith(f"model {decided['propensity version']}")
    assert by_name["analyze"]["ndcg@10 als"] > 0  # the dashboard's model-quality figures
    # the demo data ends the day before the run (by the run's own clock), so loyalty balances and expiry are live
    tx = pl.read_parquet(result.artifact_dir / "pipeline" / "history" / "current" / "transactions.parquet")
    started = dt.datetime.fromisoformat(result.report.started_at)
    assert (started - tx.get_column("timestamp").max()).days in (0, 1, 2)
    assert by_name["loyalty"]["base_orders"] > 0 and by_name["loyalty"]["points_expired"] >= 0


def test_demo_command_prints_the_stages_and_a_working_key(
    redis_url: str, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from serving.auth import hash_key
    from training.cli import app

    monkeypatch.setenv("CENTRIC_REDIS_URL", redis_url)
    monkeypatch.setenv("CENTRIC_ENV", keys.env)
    result = CliRunner().invoke(app, ["demo", "--customers", "40", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for stage in STAGES:
        assert stage in result.stdout
    assert "/ui" in result.stdout.split("shown once):", 1)[1]  # where the dashboard is
    key = result.stdout.split("shown once):", 1)[1].split()[0]
    client = sync_client(redis_url)
    try:
        record = json.loads(client.hget(keys.api_keys(), key.split("_")[1]))
    finally:
        client.close()
    assert record["scope"] == "admin" and record["sha256"] == hash_key(key)


@pytest.mark.slow
def test_next_day_purchases_reach_history_recommendations_and_ledger(
    redis_url: str, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("CENTRIC_REDIS_URL", redis_url)
    monkeypatch.setenv("CENTRIC_ENV", keys.env)
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "out"
    first = CliRunner().invoke(app, ["demo", "--customers", "40", "--out", str(out)])
    assert first.exit_code == 0, first.output
    # a real service (uvicorn subprocess on a free loopback port) takes the day through HTTP
    day = CliRunner().invoke(app, ["demo", "--next-day", "--shoppers", "8", "--out", str(out)])
    assert day.exit_code == 0, day.output
    text = " ".join(day.stdout.split())
    assert "new purchases in the history: 8 of 8 orders" in text
    assert "recommendations moved: 8 of 8 first-time items are no longer new-item suggestions" in text
    assert "loyalty ledger: 8 of 8 orders earned points" in text
    rewards = text.split("orders earned points (pipeline loyalty stage); ", 1)[1].split(" reward redemptions")[0]
    on_statement, redeemed = rewards.split(" of ")
    assert on_statement == redeemed
    counters = text.split("offer counters: redemptions +", 1)[1].split(" redeem events")[0]
    increase, events = counters.split(" for ")
    assert int(increase) == int(events) > 0
    runs = sorted((out / "pipeline" / "runs").glob("*.json"))
    second = json.loads(runs[-1].read_text())
    stages = {s["name"]: s for s in second["stages"]}
    assert stages["history"]["status"] == "done" and stages["history"]["counts"]["base_cached"] is True
    assert stages["loyalty"]["counts"]["event_orders"] == 8
    assert "base_orders" not in stages["loyalty"]["counts"]  # the base file is replayed once, not every day
