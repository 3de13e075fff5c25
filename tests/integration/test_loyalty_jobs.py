"""Loyalty jobs against a real Redis: backfill, reconcile, expire, liability, export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from recsys.columns import Columns
from training.jobs import loyalty as jobs

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _tx(rows):
    return pl.DataFrame(
        rows,
        schema={
            Columns.customer_id: pl.String,
            Columns.order_id: pl.String,
            Columns.item_id: pl.String,
            Columns.timestamp: pl.Datetime("us", "UTC"),
            Columns.amount: pl.Float64,
        },
        orient="row",
    )


def _result():
    tx = _tx(
        [
            ("a", "o1", "i1", T0, 30.0),
            ("a", "o1", "i2", T0, 20.0),
            ("b", "o2", "i1", T0 + timedelta(days=1), 10.0),
            ("a", "o3", "i3", T0 + timedelta(days=2), 100.0),
        ]
    )
    returns = _tx([("a", "o3", "i3", T0 + timedelta(days=3), 50.0)])
    return SimpleNamespace(transactions=tx, returns=returns, catalog=None)


def test_backfill_builds_balances_and_is_idempotent(redis_client, keys):
    first = jobs.run_backfill(redis_client, keys, PROGRAM, _result())
    assert first["orders"] == 3 and first["returns_applied"] == 1 and first["errors"] == 0
    bonus = 100
    # a: 50 + bonus, then 100 of which half is returned; b: 10 + bonus
    assert first["points_outstanding"] == (50 + bonus + 100 - 50) + (10 + bonus)
    again = jobs.run_backfill(redis_client, keys, PROGRAM, _result())
    assert again["points_outstanding"] == first["points_outstanding"]
    assert jobs.reconcile(redis_client, keys)["mismatches"] == []


def test_reconcile_reports_a_tampered_balance(redis_client, keys):
    jobs.run_backfill(redis_client, keys, PROGRAM, _result())
    redis_client.hincrby(keys.loyalty_account("b"), "balance", 7)
    bad = jobs.reconcile(redis_client, keys)["mismatches"]
    assert [m["customer_id"] for m in bad] == ["b"]


def test_expire_liability_and_export(redis_client, keys, tmp_path):
    jobs.run_backfill(redis_client, keys, PROGRAM, _result())
    out = jobs.export(redis_client, keys, tmp_path / "ledger.parquet")
    frame = pl.read_parquet(out["path"])
    assert frame.height == out["entries"] == 4
    assert frame.group_by("customer_id").agg(pl.col("amount").sum()).sort("customer_id")["amount"].to_list() == [
        200,
        110,
    ]
    gone = jobs.expire(redis_client, keys, PROGRAM, now=T0 + timedelta(days=800))
    assert gone["points_expired"] == 310
    liab = jobs.liability(redis_client, keys, PROGRAM)
    assert liab["points_outstanding"] == 0 and liab["liability_cents"] == 0
    assert jobs.reconcile(redis_client, keys)["mismatches"] == []
