"""Loyalty program-rule regressions from a review (2026-11-30). Review of the loyalty program rules (earning, tiers, the account view, liability).

Each test states the rule from the docs / program comments and fails on the code as it was reviewed.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from recsys.columns import Columns
from recsys.exceptions import ConfigError
from recsys.loyalty import ops
from recsys.loyalty.earning import Line, expiry_epoch, points_per_tier
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program, parse_program
from recsys.store.connection import async_client
from recsys.store.keys import Keys
from serving.services import loyalty as service
from training.jobs import loyalty as jobs

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "loyalty.toml"


def _raw() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def _ledger(redis_client, keys) -> RedisLedger:
    led = RedisLedger(redis_client, keys, load_program(EXAMPLE))
    led.init_stock()
    return led


# --- tiers: downgrade after grace ------------------------------------------------------------------------------------


def test_grace_keeps_a_tier_for_grace_months_after_the_last_qualifying_window(redis_client, keys):
    """Silver is reached on 2025-12-15 (1000 earned in Jan 2025 + 1000 in Dec 2025 = 2000 in the 12-month window).
    The qualification lapses in Jan 2026; with grace_months = 3 the customer keeps Silver through Mar 2026 and is
    downgraded from Apr 2026. The review only tests the window ending now and the one ending exactly 3 months ago,
    so the customer is demoted one month after qualifying, then promoted again in March, then demoted again."""
    led = _ledger(redis_client, keys)
    led.earn("c1", "o1", Decimal("900"), [], datetime(2025, 1, 15, tzinfo=UTC), "e1")  # 900 + 100 first-purchase bonus
    out = led.earn("c1", "o2", Decimal("1000"), [], datetime(2025, 12, 15, tzinfo=UTC), "e2")
    assert out["tier"] == 1
    reviews = [led.expire("c1", datetime(2026, m, 15, tzinfo=UTC), review_tier=True)["tier"] for m in (1, 2, 3, 4)]
    assert reviews == [1, 1, 1, 0]


# --- campaigns: window boundary ---------------------------------------------------------------------------------------


def test_campaign_counts_an_order_in_the_last_second_of_its_window():
    """The holiday campaign ends 2026-12-31T23:59:59Z (inclusive). An order at 23:59:59.5 is recorded by the ledger at
    epoch second 23:59:59 (inside the window) but earns no campaign points: the check compares microseconds."""
    program = load_program(EXAMPLE)
    last_second = datetime(2026, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert points_per_tier(program, Decimal(100), last_second) == [200, 250, 300]


# --- expiry / month labels: time zones -------------------------------------------------------------------------------


def test_expiry_and_month_use_the_utc_day_for_a_non_utc_now():
    """expiry_epoch: 'start of that day, UTC'. 2026-01-31T23:00-05:00 is 2026-02-01T04:00Z: 12 months later the
    points expire at 2027-02-01T00:00Z and the order counts in month 202602. The code uses the caller's zone."""
    program = load_program(EXAMPLE)
    now = datetime(2026, 1, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert expiry_epoch(program, now) == int(datetime(2027, 2, 1, tzinfo=UTC).timestamp())
    call = ops.earn_call(program, Keys(env="t"), "c1", "o1", Decimal(10), [], now, "k1")
    assert json.loads(call.args[5])["month"] == "202602"


# --- program validation: clear ConfigError naming file / field / value ------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), "NaN", float("inf"), "Infinity"])
def test_non_finite_number_is_a_config_error(value):
    """points_per_unit = nan raises decimal.InvalidOperation (no file/field); inf is accepted and every earn then
    fails in quantize. Both should be a ConfigError naming the field."""
    raw = _raw()
    raw["program"]["points_per_unit"] = value
    with pytest.raises(ConfigError, match=r"prog\.toml.*program\.points_per_unit"):
        parse_program(raw, "prog.toml")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r["tiers"]["levels"].__setitem__(0, 5), "tiers.levels[0]"),
        (lambda r: r["earning"].__setitem__("campaigns", [3]), "earning.campaigns[0]"),
    ],
)
def test_a_list_entry_that_is_not_a_table_is_a_config_error(mutate, needle):
    """`levels = [5]` raises TypeError('argument of type int is not iterable'), not a ConfigError naming the field."""
    raw = _raw()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_program(raw, "prog.toml")
    assert needle in str(err.value)


def test_lowest_tier_must_start_at_zero():
    """Every customer starts in tier 0 (an absent 'tier' field reads 0), so a lowest threshold of 500 makes the view
    and the earn answer show 'Bronze' to a customer with 0 points, a tier they do not hold. Refuse it on load."""
    raw = _raw()
    raw["tiers"]["levels"][0]["threshold"] = 500
    with pytest.raises(ConfigError, match=r"tiers\.levels\[0\]\.threshold"):
        parse_program(raw, "prog.toml")


def test_reward_validity_window_ending_before_it_starts_is_refused():
    """Campaigns refuse end < start; rewards accept valid_to < valid_from and are then silently never available."""
    raw = _raw()
    raw["rewards"][2]["valid_to"] = datetime(2019, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"rewards\[2\]\.valid_to"):
        parse_program(raw, "prog.toml")


# --- account view: balance and affordability after expiry ------------------------------------------------------------


def test_view_balance_excludes_points_already_past_their_expiry(redis_url, redis_client, keys):
    """600 points earned 2025-01-10 expire 2026-01-10. On 2026-02-01, with no write since, the view shows balance 600
    and 'coffee' (300) affordable, yet a redeem then expires the lot first and is refused insufficient_points."""
    led = _ledger(redis_client, keys)
    led.earn("c1", "o1", Decimal("500"), [], datetime(2025, 1, 10, tzinfo=UTC), "e1")

    async def body():
        client = async_client(redis_url)
        try:
            svc = service.LoyaltyService(
                led.program, client, keys, client.register_script(ops.LEDGER_LUA), client.register_script(ops.STOCK_LUA)
            )
            return await service.account(svc, "c1", datetime(2026, 2, 1, tzinfo=UTC))
        finally:
            await client.aclose()

    view = asyncio.run(body())
    assert view.balance == 0
    assert not any(r.affordable for r in view.rewards)


# --- liability: expired points are not outstanding -------------------------------------------------------------------


def test_liability_does_not_count_points_past_their_expiry(redis_client, keys):
    """600 points earned 2020-01-10 expired 2021-01-10; liability (also the backfill summary) still counts them as
    outstanding until `centric loyalty expire` happens to run."""
    led = _ledger(redis_client, keys)
    led.earn("c1", "o1", Decimal("500"), [], datetime(2020, 1, 10, tzinfo=UTC), "e1")
    out = jobs.liability(redis_client, keys, EXAMPLE)
    assert out["points_outstanding"] == 0 and out["liability_cents"] == 0


# --- category multipliers: live earn vs backfill ---------------------------------------------------------------------


def test_live_earn_applies_category_multipliers_like_the_backfill(redis_client, keys):
    """The backfill weights a PRODUCE line x2 (from the catalog): $10 of apples earns 20 + 100 bonus. The live earn
    paths (RedisLedger.earn, POST /earn -> serving.services.loyalty.earn_call) never pass categories to
    ops.earn_call, so the same order earns 10 + 100 there; RedisLedger.earn cannot even be told the category."""
    t = datetime(2025, 3, 1, tzinfo=UTC)
    tx = pl.DataFrame(
        [("a", "o1", "apple", t, 10.0)],
        orient="row",
        schema={
            Columns.customer_id: pl.String,
            Columns.order_id: pl.String,
            Columns.item_id: pl.String,
            Columns.timestamp: pl.Datetime("us", "UTC"),
            Columns.amount: pl.Float64,
        },
    )
    catalog = pl.DataFrame({Columns.item_id: ["apple"], Columns.category: ["PRODUCE"]})
    jobs.run_backfill(redis_client, keys, EXAMPLE, SimpleNamespace(transactions=tx, returns=None, catalog=catalog))
    led = _ledger(redis_client, keys)
    backfilled = led.account("a")["balance"]
    assert backfilled == 20 + 100
    live = led.earn(
        "b", "o1", Decimal(10), [Line("apple", Decimal(1), Decimal(10))], t, "k1", categories={"apple": "PRODUCE"}
    )
    assert live["balance"] == backfilled
