"""Loyalty jobs against a real Redis: backfill, reconcile, expire, liability, export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from recsys.columns import Columns
from recsys.loyalty.earning import Line
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


# --- Program-rule regressions from the review of 2026-11-30: liability and category multipliers ---------------------
# From the review of the loyalty program rules (earning, tiers, the account view, liability), 2026-11-30: each test
# states the rule from the docs / program comments and failed on the code as it was reviewed.


def test_liability_does_not_count_points_past_their_expiry(ledger, redis_client, keys):
    """600 points earned 2020-01-10 expired 2021-01-10; liability (also the backfill summary) still counts them as
    outstanding until `centric loyalty expire` happens to run."""
    led = ledger
    led.earn("c1", "o1", Decimal("500"), [], datetime(2020, 1, 10, tzinfo=UTC), "e1")
    out = jobs.liability(redis_client, keys, PROGRAM)
    assert out["points_outstanding"] == 0 and out["liability_cents"] == 0


def test_live_earn_applies_category_multipliers_like_the_backfill(ledger, redis_client, keys):
    """The backfill weights a PRODUCE line x2 (from the catalog): $10 of apples earns 20 + 100 bonus. The live earn
    paths (RedisLedger.earn, POST /earn -> serving.services.loyalty.earn_call) never pass categories to
    ops.earn_call, so the same order earns 10 + 100 there; RedisLedger.earn cannot even be told the category."""
    t = datetime(2025, 3, 1, tzinfo=UTC)
    tx = _tx([("a", "o1", "apple", t, 10.0)])
    catalog = pl.DataFrame({Columns.item_id: ["apple"], Columns.category: ["PRODUCE"]})
    jobs.run_backfill(redis_client, keys, PROGRAM, SimpleNamespace(transactions=tx, returns=None, catalog=catalog))
    led = ledger
    backfilled = led.account("a")["balance"]
    assert backfilled == 20 + 100
    live = led.earn(
        "b", "o1", Decimal(10), [Line("apple", Decimal(1), Decimal(10))], t, "k1", categories={"apple": "PRODUCE"}
    )
    assert live["balance"] == backfilled


# --- Review of 2026-11-30, was: the backfill applied returns after every later earn ---------------------------------


def test_backfill_replays_returns_in_timestamp_order(redis_client, keys):
    """o1 (100, +100 bonus) at T0, returned at T0+300d (before its points expire at T0+12 months), o2 (50) at
    T0+400d. In time order: 200 earned, 200 reversed, 50 earned -> balance 50, no debt. The backfill earns
    every order first: o2's step (at T0+400d) expires o1's 200, then the return (at T0+300d) finds only o2's
    50, takes it and books 150 debt -> balance 0, debt 150 (before the fix: earns first, returns after)."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    tx = _tx([("a", "o1", "i1", t0, 100.0), ("a", "o2", "i1", t0 + timedelta(days=400), 50.0)])
    returns = _tx([("a", "o1", "i1", t0 + timedelta(days=300), 100.0)])
    out = jobs.run_backfill(
        redis_client, keys, PROGRAM, SimpleNamespace(transactions=tx, returns=returns, catalog=None)
    )
    assert out["returns_applied"] == 1
    assert (out["points_outstanding"], out["debt_points"]) == (50, 0)


def test_backfill_links_a_receiptless_return_to_the_latest_earlier_purchase_of_its_item(redis_client, keys):
    """Online Retail's cancellations carry their own invoice id ("C..."), never the one they cancel: such a line
    reverses the customer's latest earlier order with that item; a line with no such purchase is skipped."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    tx = _tx(
        [
            ("a", "o1", "i1", t0, 100.0),
            ("a", "o2", "i2", t0 + timedelta(days=1), 50.0),
            ("a", "o3", "i1", t0 + timedelta(days=5), 30.0),
        ]
    )
    returns = _tx(
        [
            ("a", "C9", "i1", t0 + timedelta(days=2), 100.0),  # o1 (o3 is later)
            ("a", "C10", "i9", t0 + timedelta(days=2), 10.0),
        ]
    )  # never bought
    out = jobs.run_backfill(
        redis_client, keys, PROGRAM, SimpleNamespace(transactions=tx, returns=returns, catalog=None)
    )
    assert out["return_lines_linked_to_purchase"] == 1
    assert out["returns_applied"] == 1 and out["returns_skipped"]["unknown_order"] == 1
    assert (out["points_outstanding"], out["debt_points"]) == (50 + 30, 0)  # o1's 200 (with the bonus) taken back


def test_backfill_rerun_over_a_longer_history_applies_only_the_new_return_lines(redis_client, keys):
    """Returns once reversed under one key per order: a second return of the same order in a later rerun was a
    conflict and never applied. Each line has its own key now; identical lines count separately."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    tx = _tx([("a", "o1", "i1", t0, 100.0), ("a", "o1", "i2", t0, 100.0)])  # 200 + 100 first-purchase bonus = 300
    first = _tx([("a", "o1", "i1", t0 + timedelta(days=3), 50.0)])
    grown = _tx(
        [
            ("a", "o1", "i1", t0 + timedelta(days=3), 50.0),
            ("a", "o1", "i2", t0 + timedelta(days=9), 50.0),
            ("a", "o1", "i2", t0 + timedelta(days=9), 50.0),
        ]
    )  # the same line twice: two items returned

    def run(returns: pl.DataFrame) -> dict:
        return jobs.run_backfill(
            redis_client, keys, PROGRAM, SimpleNamespace(transactions=tx, returns=returns, catalog=None)
        )

    assert run(first)["points_outstanding"] == 300 - 75  # a quarter of the order's value
    assert run(first)["points_outstanding"] == 225  # rerun: nothing new
    out = run(grown)
    assert out["returns_skipped"] == {"unknown_order": 0, "conflict": 0, "error": 0}
    assert out["points_outstanding"] == 300 - 225  # three quarters returned, cumulatively
