"""Loyalty ledger regressions found in review (2026-11-30): inputs and interleavings that once lost, doubled or
charged points twice. Each section names what went wrong before its fix; the tests assert the fixed behaviour."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from pydantic import ValidationError

from recsys.columns import Columns
from recsys.exceptions import DataError, InsufficientPoints
from recsys.loyalty import ops
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.store.connection import async_client
from serving.schemas.loyalty import GrantCreate, OrderLine
from serving.services import loyalty as service
from training.jobs import loyalty as jobs

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "loyalty.toml"
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)


@contextlib.asynccontextmanager
async def _service(redis_url, keys, program):
    """The service's loyalty object on its own async client (what ``get_loyalty`` builds in the app)."""
    client = async_client(redis_url)
    try:
        yield service.LoyaltyService(
            program, client, keys, client.register_script(ops.LEDGER_LUA), client.register_script(ops.STOCK_LUA)
        )
    finally:
        await client.aclose()


# --- 1. was: two customers shared one ledger -------------------------------------------------------------------------


def test_customer_ids_differing_only_in_braces_do_not_share_a_ledger(ledger):
    """``Keys._tag`` once rewrote '{'/'}' to '('/')', so customers "{a}" and "(a)" got the same five ledger keys:
    "(a)" spent the points "{a}" earned, and the liability job counted the one balance twice."""
    ledger.grant("{a}", 500, "earned by {a}", NOW, "g1")
    with pytest.raises(InsufficientPoints):
        ledger.redeem("(a)", "coffee", 1, NOW, "r1")  # "(a)" never earned anything


def test_liability_counts_each_point_once_for_brace_ids(ledger, redis_client, keys):
    ledger.grant("{a}", 500, "x", NOW, "g1")
    ledger.grant("(a)", 1, "y", NOW, "g1b")
    assert jobs.liability(redis_client, keys, PROGRAM, now=NOW)["points_outstanding"] == 501


# --- 2. was: a return worth nothing reversed the whole order -------------------------------------------------------


def test_a_return_worth_zero_reverses_nothing(ledger):
    """``reverse_call`` once sent cents 0 both for "the whole order" (returned None) and for a return worth 0 cents
    (a free item, or under half a cent), and the script read 0 as "everything"; now "all" is explicit."""
    ledger.earn("c1", "o1", Decimal("100"), [], NOW, "e1")
    out = ledger.reverse("c1", "o1", Decimal("0"), NOW, "v1")
    assert out["entry"]["points"] == 0
    assert out["balance"] == 200


def test_returning_a_free_item_over_http_service_reverses_nothing(redis_url, redis_client, keys):
    """The same through the service (route and fast path build the call the same way): one free gift returned."""
    program = load_program(PROGRAM)

    async def body():
        async with _service(redis_url, keys, program) as svc:
            led = RedisLedger(redis_client, keys, program)
            led.earn("c1", "o1", Decimal("100"), [], NOW, "e1")
            gift = [OrderLine(item_id="free-tote", quantity=Decimal(1), price=Decimal(0))]
            return await service.reverse(svc, "c1", "o1", gift, "v1", NOW)

    out = asyncio.run(body())
    assert out.entry["points"] == 0 and out.balance == 200


# --- 3. was: points that expired were charged again as debt when their order was returned ----------------------------


def test_reversing_an_order_whose_points_expired_does_not_charge_them_twice(ledger):
    """Earn 200 (100 + first-purchase bonus), let them expire, then the order is returned: the 200 already left
    the balance by expiry, so the reversal must book no debt, and the next 200 earned stay with the customer."""
    ledger.earn("c1", "o1", Decimal("100"), [], NOW, "e1")
    later = NOW + timedelta(days=400)
    assert ledger.expire("c1", later)["expired"] == 200
    out = ledger.reverse("c1", "o1", None, later, "v1")
    assert out["debt"] == 0
    assert ledger.earn("c1", "o2", Decimal("200"), [], later, "e2")["balance"] == 200


# --- 4. was: the backfill applied returns after every later earn ---------------------------------------------------


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
    run = lambda returns: jobs.run_backfill(
        redis_client,
        keys,
        PROGRAM,
        SimpleNamespace(transactions=tx, returns=returns, catalog=None),
    )
    assert run(first)["points_outstanding"] == 300 - 75  # a quarter of the order's value
    assert run(first)["points_outstanding"] == 225  # rerun: nothing new
    out = run(grown)
    assert out["returns_skipped"] == {"unknown_order": 0, "conflict": 0, "error": 0}
    assert out["points_outstanding"] == 300 - 225  # three quarters returned, cumulatively


# --- 5. was: a bulk grant naming a customer twice was half applied -------------------------------------------------------------------


def _grant(redis_url, keys, grants):
    program = load_program(PROGRAM)

    async def body():
        async with _service(redis_url, keys, program) as svc:
            return await service.grant(svc, grants, "apology", "bulk-1", NOW)

    return asyncio.run(body())


def test_bulk_grant_naming_a_customer_twice_is_refused_whole(redis_url, redis_client, keys):
    """Both lines of c1 would share the key ``bulk-1:c1`` (one applied, the other a conflict or a silent replay):
    the grant is refused before anything is written."""
    for lines in ([("c1", 10), ("c2", 5), ("c1", 20)], [("c1", 10), ("c1", 10)]):
        with pytest.raises(DataError, match="c1"):
            _grant(redis_url, keys, lines)
    ledger = RedisLedger(redis_client, keys, load_program(PROGRAM))
    assert ledger.account("c1")["balance"] == ledger.account("c2")["balance"] == 0


def test_bulk_grant_schema_refuses_a_customer_twice():
    with pytest.raises(ValidationError, match="more than once"):
        GrantCreate(reason="x", grants=[{"customer_id": "c1", "points": 1}, {"customer_id": "c1", "points": 2}])
    assert (
        len(
            GrantCreate(
                reason="x", grants=[{"customer_id": "c1", "points": 1}, {"customer_id": "c2", "points": 2}]
            ).grants
        )
        == 2
    )


# --- 6. was: a retry of a redemption that went through was refused after a tier review ---------------------------------


def test_retry_of_a_completed_redeem_replays_after_the_tier_review(redis_url, redis_client, keys):
    """Gold redeems the Gold-only lounge pass (5000 points debited, stock taken); the period-end review demotes
    the customer before the client's retry arrives. The retry must answer the recorded result (before the fix it
    answered 409 reward_unavailable: the client was told a redemption failed that was in fact charged)."""
    program = load_program(PROGRAM)
    led = RedisLedger(redis_client, keys, program)
    led.init_stock()
    t0 = datetime(2024, 1, 5, tzinfo=UTC)
    led.earn("c1", "o1", Decimal("5000"), [], t0, "e1")
    led.earn("c1", "o2", Decimal("5000"), [], t0, "e2")
    assert led.account("c1")["tier"] == 2
    t1 = t0 + timedelta(days=470)  # Gold is kept until a review; earnings now outside window and grace window
    led.grant("c1", 6000, "goodwill", t1 - timedelta(days=10), "g1")  # spendable points (grants do not qualify)

    async def body():
        async with _service(redis_url, keys, program) as svc:
            first = await service.redeem(svc, "c1", "gold-lounge", 1, "r1", t1)
            assert led.expire("c1", t1, review_tier=True)["tier"] == 0  # period-end review between the two
            again = await service.redeem(svc, "c1", "gold-lounge", 1, "r1", t1 + timedelta(minutes=1))
            return first, again

    first, again = asyncio.run(body())
    assert again.replayed and again.entry == first.entry
