"""The Redis ledger against a real Redis: earning, redeeming, reversing, expiry, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from recsys.exceptions import IdempotencyConflict, InsufficientPoints, OutOfStock, UnknownReward
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.ops import UnknownOrder
from recsys.store import scripts

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
    from recsys.loyalty import ops

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
    from recsys.loyalty import ops
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
    from recsys.loyalty import ops

    for customer, key in [("c1", "k"), ("a:b", "x:y"), ("", "k"), ("{a}", "")]:
        assert ops.parse_reservation(("res:" + ops.reservation_key(customer, key)).encode()) == (customer, key)
    assert ops.parse_reservation(b"res:old-style-key") is None
    assert ops.parse_reservation(b"stock") is None
