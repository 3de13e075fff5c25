"""The Redis ledger against a real Redis: earning, redeeming, reversing, expiry, idempotency."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from recsys.exceptions import (
    DuplicateGrantCustomer,
    IdempotencyConflict,
    InsufficientPoints,
    OutOfStock,
    UnknownReward,
)
from recsys.loyalty import ops
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.ops import UnknownOrder
from recsys.loyalty.program import load_program
from recsys.store import scripts
from serving.schemas.loyalty import OrderLine
from serving.services import loyalty as service
from training.jobs import loyalty as jobs

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)


def _sum(ledger: RedisLedger, cid: str) -> int:
    return sum(e["amount"] for e in ledger.entries(cid))


def test_earn_credits_points_with_first_purchase_bonus(ledger):
    out = ledger.earn("c1", "o1", Decimal("12.50"), [], NOW, "k1")
    assert out["entry"]["type"] == "earn"
    assert out["balance"] == 12 + ledger.program.first_purchase_bonus
    second = ledger.earn("c1", "o2", Decimal("10"), [], NOW, "k2")
    assert second["balance"] == out["balance"] + 10


def test_same_key_same_payload_replays_without_second_effect(ledger):
    first = ledger.earn("c1", "o1", Decimal("50"), [], NOW, "k1")
    again = ledger.earn("c1", "o1", Decimal("50"), [], NOW, "k1")
    assert again["replayed"] and again["entry"] == first["entry"]
    assert ledger.account("c1")["balance"] == first["balance"]
    assert len(ledger.entries("c1")) == 1


def test_same_key_different_payload_is_refused(ledger):
    ledger.earn("c1", "o1", Decimal("50"), [], NOW, "k1")
    with pytest.raises(IdempotencyConflict):
        ledger.earn("c1", "o1", Decimal("51"), [], NOW, "k1")


def test_overdraw_is_refused_and_changes_nothing(ledger):
    ledger.earn("c1", "o1", Decimal("50"), [], NOW, "k1")
    before = ledger.account("c1"), ledger.stock("coffee")
    with pytest.raises(InsufficientPoints):
        ledger.redeem("c1", "coffee", 1, NOW, "r1")
    assert (ledger.account("c1"), ledger.stock("coffee")) == before


def test_refused_redeem_stays_refused_for_its_key(ledger):
    ledger.grant("c1", 100, "small", NOW, "g1")
    with pytest.raises(InsufficientPoints):
        ledger.redeem("c1", "coffee", 1, NOW, "r1")
    ledger.grant("c1", 1000, "more", NOW, "g2")
    with pytest.raises(InsufficientPoints, match="100 points; 300 needed"):  # the recorded answer, not a new try
        ledger.redeem("c1", "coffee", 1, NOW, "r1")
    assert ledger.stock("coffee") == ledger.program.rewards["coffee"].stock
    assert ledger.redeem("c1", "coffee", 1, NOW, "r2")["balance"] == 800


def test_retry_racing_a_refused_redeem_cannot_debit_released_stock(ledger):
    """The interleaving that oversold: A reserves, A's retry B finds the reservation held, A's debit is refused
    and A releases the stock, the customer earns, then B's debit runs. B must be refused, the stock whole."""

    ledger.grant("c1", 100, "small", NOW, "g1")
    call = ops.redeem_call(ledger.program, ledger.keys, "c1", "coffee", 1, NOW, "r1")
    stock_key, full = ledger.keys.loyalty_stock("coffee"), ledger.stock("coffee")
    reserve = ops.stock_args("reserve", "c1", "r1", "coffee", 1)
    assert scripts.run(ledger.client, scripts.STOCK, [stock_key], reserve) == b"ok"  # A
    assert scripts.run(ledger.client, scripts.STOCK, [stock_key], reserve) == b"held"  # B
    with pytest.raises(InsufficientPoints):
        ledger.run(call, "c1", "r1")  # A's debit
    scripts.run(ledger.client, scripts.STOCK, [stock_key], ops.stock_args("release", "c1", "r1", "coffee", 1))
    ledger.grant("c1", 1000, "concurrent earn", NOW, "g2")
    with pytest.raises(InsufficientPoints):
        ledger.run(call, "c1", "r1")  # B's debit
    assert ledger.stock("coffee") == full
    assert [e["type"] for e in ledger.entries("c1")] == ["grant", "grant"]


def test_two_customers_may_use_the_same_key_and_each_takes_stock(ledger, redis_client, keys):
    """Idempotency keys are per customer: the same key value from two customers is two redemptions, two units."""
    redis_client.hset(keys.loyalty_stock("coffee"), "stock", 1)
    for cid in ("c1", "c2"):
        ledger.grant(cid, 1000, "rich", NOW, "g1")
    ledger.redeem("c1", "coffee", 1, NOW, "same-key")
    with pytest.raises(OutOfStock):
        ledger.redeem("c2", "coffee", 1, NOW, "same-key")
    assert ledger.stock("coffee") == 0
    assert [e["type"] for e in ledger.entries("c2")] == ["grant"]
    again = ledger.redeem("c1", "coffee", 1, NOW, "same-key")  # c1's retry still replays
    assert again["replayed"] and ledger.stock("coffee") == 0


def test_redeem_burns_lots_closest_to_expiry_first(ledger):
    ledger.grant("c1", 200, "old", NOW, "g1")
    ledger.grant("c1", 200, "new", NOW + timedelta(days=40), "g2")
    lots_before = ledger.account("c1")["lots"]
    ledger.redeem("c1", "coffee", 1, NOW + timedelta(days=41), "r1")  # 300 points
    lots = ledger.account("c1")["lots"]
    oldest, newest = sorted(lots_before)
    assert oldest not in lots and lots[newest] == 100
    assert ledger.stock("coffee") == ledger.program.rewards["coffee"].stock - 1


def test_unknown_reward_and_out_of_stock(ledger, redis_client, keys):
    ledger.grant("c1", 100000, "rich", NOW, "g1")
    with pytest.raises(UnknownReward):
        ledger.redeem("c1", "nope", 1, NOW, "r0")
    redis_client.hset(keys.loyalty_stock("coffee"), "stock", 1)
    with pytest.raises(OutOfStock):
        ledger.redeem("c1", "coffee", 2, NOW, "r1")
    assert ledger.stock("coffee") == 1


def test_partial_reversals_sum_to_what_the_order_earned(ledger):
    ledger.grant("c0", 1, "x", NOW, "g")  # c1's own first-order bonus stays out of the arithmetic below
    ledger.earn("c1", "first", Decimal("1"), [], NOW, "e0")
    earned = ledger.earn("c1", "o1", Decimal("99.99"), [], NOW, "e1")["entry"]["points"]
    a = ledger.reverse("c1", "o1", Decimal("33.33"), NOW, "v1")["entry"]["points"]
    b = ledger.reverse("c1", "o1", Decimal("33.33"), NOW, "v2")["entry"]["points"]
    c = ledger.reverse("c1", "o1", Decimal("33.33"), NOW, "v3")["entry"]["points"]
    assert a + b + c == earned
    assert ledger.reverse("c1", "o1", None, NOW, "v4")["entry"]["points"] == 0
    with pytest.raises(UnknownOrder):
        ledger.reverse("c1", "missing", None, NOW, "v5")


def test_reversal_after_spending_never_goes_negative_and_records_debt(ledger):
    ledger.earn("c1", "o1", Decimal("400"), [], NOW, "e1")  # 400 + bonus
    ledger.redeem("c1", "coffee", 1, NOW, "r1")
    out = ledger.reverse("c1", "o1", None, NOW, "v1")
    assert out["balance"] == 0 and out["entry"]["shortfall"] > 0 and out["debt"] == out["entry"]["shortfall"]
    paid = ledger.earn("c1", "o2", Decimal("1000"), [], NOW, "e2")
    assert paid["entry"]["debt_paid"] == out["debt"] and paid["debt"] == 0
    assert ledger.account("c1")["balance"] == _sum(ledger, "c1")


def test_points_expire_after_the_program_months(ledger):
    ledger.grant("c1", 500, "x", NOW, "g1")
    later = NOW + timedelta(days=31 * ledger.program.expiry_months + 1)
    out = ledger.expire("c1", later)
    assert out["expired"] == 500 and out["balance"] == 0
    assert ledger.entries("c1")[-1]["type"] == "expire"
    assert _sum(ledger, "c1") == 0


def test_tier_rises_on_points_earned_in_window(ledger):
    silver = ledger.program.tiers[1].threshold
    out = ledger.earn("c1", "o1", Decimal(silver), [], NOW, "e1")
    assert out["tier"] == 1
    ledger.redeem("c1", "voucher-10", 2, NOW, "r1")  # spending does not lower the tier
    assert ledger.account("c1")["tier"] == 1


def test_tier_downgrade_waits_out_the_grace_period(ledger):
    program = ledger.program
    silver = program.tiers[1].threshold
    ledger.earn("c1", "o1", Decimal(silver), [], NOW, "e1")
    in_grace = NOW + timedelta(days=31 * (program.window_months + program.grace_months - 1))
    assert ledger.expire("c1", in_grace, review_tier=True)["tier"] == 1
    after = NOW + timedelta(days=31 * (program.window_months + program.grace_months + 1))
    assert ledger.expire("c1", after, review_tier=True)["tier"] == 0
    assert ledger.account("c1")["tier"] == 0


def _script_commands(client) -> int:
    return sum(v["calls"] for k, v in client.info("commandstats").items() if k.startswith("cmdstat_script"))


def test_a_step_is_one_round_trip_and_survives_a_script_flush(ledger, redis_client):
    ledger.earn("c1", "o1", Decimal(5), [], NOW, "k1")
    redis_client.script_flush()
    out = ledger.earn("c1", "o2", Decimal(5), [], NOW, "k2")  # NOSCRIPT: loaded and sent again
    assert out["balance"] == 5 + ledger.program.first_purchase_bonus + 5
    before = _script_commands(redis_client)
    ledger.earn("c1", "o3", Decimal(5), [], NOW, "k3")
    assert _script_commands(redis_client) == before  # no SCRIPT EXISTS before the EVALSHA


def test_expire_job_prunes_decided_reservations_and_keeps_open_ones(ledger, redis_client, keys):
    from training.jobs.loyalty import expire

    ledger.grant("c1", 1000, "rich", NOW, "g1")
    ledger.grant("c2", 100, "poor", NOW, "g1")
    ledger.redeem("c1", "coffee", 2, NOW, "r1")  # decided: debited
    with pytest.raises(InsufficientPoints):
        ledger.redeem("c2", "coffee", 1, NOW, "r1")  # decided: refused, stock given back
    stock_key = keys.loyalty_stock("coffee")
    scripts.run(
        ledger.client, scripts.STOCK, [stock_key], ops.stock_args("reserve", "c3", "r9", "coffee", 1)
    )  # open: no debit yet
    full = ledger.program.rewards["coffee"].stock
    assert ledger.stock("coffee") == full - 3

    out = expire(redis_client, keys, PROGRAM, NOW)
    assert (out["reservations_pruned"], out["reservations_open"]) == (2, 1)
    fields = {f.decode() for f in redis_client.hkeys(stock_key)}
    assert fields == {"stock", "res:" + ops.reservation_key("c3", "r9")}
    assert ledger.stock("coffee") == full - 3  # pruning never changes stock

    # retries of the decided keys replay; no stock is taken again
    assert ledger.redeem("c1", "coffee", 2, NOW, "r1")["replayed"]
    with pytest.raises(InsufficientPoints):
        ledger.redeem("c2", "coffee", 1, NOW, "r1")
    assert ledger.stock("coffee") == full - 3
    assert expire(redis_client, keys, PROGRAM, NOW)["reservations_pruned"] == 0


def test_parse_reservation_reads_only_the_per_customer_layout():

    for customer, key in [("c1", "k"), ("a:b", "x:y"), ("", "k"), ("{a}", "")]:
        assert ops.parse_reservation(("res:" + ops.reservation_key(customer, key)).encode()) == (customer, key)
    assert ops.parse_reservation(b"res:old-style-key") is None
    assert ops.parse_reservation(b"stock") is None


# --- Program-rule regressions from the review of 2026-11-30: tiers and the account view -----------------------------
# From the review of the loyalty program rules (earning, tiers, the account view, liability), 2026-11-30: each test
# states the rule from the docs / program comments and failed on the code as it was reviewed.


def test_grace_keeps_a_tier_for_grace_months_after_the_last_qualifying_window(ledger, redis_client, keys):
    """Silver is reached on 2025-12-15 (1000 earned in Jan 2025 + 1000 in Dec 2025 = 2000 in the 12-month window).
    The qualification lapses in Jan 2026; with grace_months = 3 the customer keeps Silver through Mar 2026 and is
    downgraded from Apr 2026. The review only tests the window ending now and the one ending exactly 3 months ago,
    so the customer is demoted one month after qualifying, then promoted again in March, then demoted again."""
    led = ledger
    led.earn("c1", "o1", Decimal("900"), [], datetime(2025, 1, 15, tzinfo=UTC), "e1")  # 900 + 100 first-purchase bonus
    out = led.earn("c1", "o2", Decimal("1000"), [], datetime(2025, 12, 15, tzinfo=UTC), "e2")
    assert out["tier"] == 1
    reviews = [led.expire("c1", datetime(2026, m, 15, tzinfo=UTC), review_tier=True)["tier"] for m in (1, 2, 3, 4)]
    assert reviews == [1, 1, 1, 0]


def test_view_balance_excludes_points_already_past_their_expiry(ledger, redis_url, redis_client, keys):
    """600 points earned 2025-01-10 expire 2026-01-10. On 2026-02-01, with no write since, the view shows balance 600
    and 'coffee' (300) affordable, yet a redeem then expires the lot first and is refused insufficient_points."""
    led = ledger
    led.earn("c1", "o1", Decimal("500"), [], datetime(2025, 1, 10, tzinfo=UTC), "e1")

    async def body():
        client = aioredis.from_url(redis_url)
        try:
            svc = service.LoyaltyService(led.program, client, keys)
            return await service.account(svc, "c1", datetime(2026, 2, 1, tzinfo=UTC))
        finally:
            await client.aclose()

    view = asyncio.run(body())
    assert view.balance == 0
    assert not any(r.affordable for r in view.rewards)


# ====================================================================================================================
# Ledger regressions found in review (was test_loyalty_review.py)
#
# Loyalty ledger regressions found in review (2026-11-30): inputs and interleavings that once lost, doubled or charged
# points twice. Each section names what went wrong before its fix; the tests assert the fixed behaviour.
# ====================================================================================================================


@contextlib.asynccontextmanager
async def _service(redis_url, keys, program):
    """The service's loyalty object on its own async client (what ``get_loyalty`` builds in the app)."""
    client = aioredis.from_url(redis_url)
    try:
        yield service.LoyaltyService(program, client, keys)
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


# --- 3. was: points that expired were charged again as debt when their order was returned ---


def test_reversing_an_order_whose_points_expired_does_not_charge_them_twice(ledger):
    """Earn 200 (100 + first-purchase bonus), let them expire, then the order is returned: the 200 already left
    the balance by expiry, so the reversal must book no debt, and the next 200 earned stay with the customer."""
    ledger.earn("c1", "o1", Decimal("100"), [], NOW, "e1")
    later = NOW + timedelta(days=400)
    assert ledger.expire("c1", later)["expired"] == 200
    out = ledger.reverse("c1", "o1", None, later, "v1")
    assert out["debt"] == 0
    assert ledger.earn("c1", "o2", Decimal("200"), [], later, "e2")["balance"] == 200


# --- 5. was: a bulk grant naming a customer twice was half applied --------------------------------------------------


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
        with pytest.raises(DuplicateGrantCustomer, match="c1"):  # 409 over HTTP
            _grant(redis_url, keys, lines)
    ledger = RedisLedger(redis_client, keys, load_program(PROGRAM))
    assert ledger.account("c1")["balance"] == ledger.account("c2")["balance"] == 0


# (the HTTP answer to a customer listed twice, 409 before the ledger runs: tests/e2e/test_openapi_contract.py)


# --- 6. was: a retry of a redemption that went through was refused after a tier review ---


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
