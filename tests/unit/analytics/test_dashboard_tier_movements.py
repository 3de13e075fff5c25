"""Tier movements replayed from ledger statements (recsys.analytics.tier_movements), on known data and against the
ledger script itself."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import redis

from recsys.analytics.tier_movements import TierMovements, TierRules, replay_customer
from recsys.loyalty.earning import Line, add_months
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.store.keys import Keys

PROGRAM = Path(__file__).resolve().parents[3] / "examples" / "loyalty.toml"
RULES = TierRules(thresholds=(0, 2000, 6000), window_months=12, grace_months=3)  # Bronze, Silver, Gold


def _at(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, 12, tzinfo=UTC).timestamp())


def _month_end(y: int, m: int) -> int:
    return int(add_months(datetime(y, m, 1, tzinfo=UTC), 1).timestamp()) - 1


def test_earning_past_a_threshold_upgrades_in_that_month_and_the_downgrade_waits_out_the_grace() -> None:
    entries = [{"type": "earn", "at": _at(2026, 1, 15), "points": 2500, "source": "o1"}]
    replay = replay_customer(entries, RULES, datetime(2027, 6, 1, tzinfo=UTC))
    moves = [(m.month, m.before, m.after) for m in replay.moves]
    # Jan 2026 stays in the 12-month window through Dec 2026; grace keeps Silver while a window ending in the last
    # 3 months qualifies (up to the Jan 2027 review); the Apr 2027 review is the first with none left
    assert moves == [("2026-01", 0, 1), ("2027-04", 1, 0)]
    assert replay.moves[1].at == _month_end(2027, 4)
    assert replay.tier == 0


def test_a_reversal_takes_points_out_of_its_orders_month_and_the_next_review_downgrades() -> None:
    entries = [
        {"type": "earn", "at": _at(2026, 1, 10), "points": 2100, "source": "o1"},
        {"type": "grant", "at": _at(2026, 1, 20), "points": 5000, "source": "goodwill"},  # grants never qualify
        {"type": "reverse", "at": _at(2026, 2, 3), "points": 200, "source": "o1"},
    ]
    replay = replay_customer(entries, RULES, datetime(2026, 3, 15, tzinfo=UTC))
    # 1,900 earned in Jan: no window ending Nov 2025 … Feb 2026 reaches 2,000, so the Feb review downgrades
    assert [(m.month, m.before, m.after) for m in replay.moves] == [("2026-01", 0, 1), ("2026-02", 1, 0)]


def test_two_tiers_at_once_count_as_one_upgrade_and_the_table_counts_per_month() -> None:
    movements = TierMovements(tiers=3)
    until = datetime(2026, 3, 31, tzinfo=UTC)
    for day, points in ((_at(2026, 2, 1), 7000), (_at(2026, 2, 9), 2000), (_at(2026, 3, 9), 10)):
        movements.add(replay_customer([{"type": "earn", "at": day, "points": points, "source": "o"}], RULES, until))
    table = movements.table(["Bronze", "Silver", "Gold"])
    assert table == [
        {
            "month": "2026-02",
            "upgrades": 2,
            "downgrades": 0,
            "moves": [
                {"from": "Bronze", "to": "Silver", "customers": 1},
                {"from": "Bronze", "to": "Gold", "customers": 1},
            ],
        }
    ]
    assert movements.current == [1, 1, 1]


def test_replayed_tiers_match_the_ledger_script_with_monthly_reviews(redis_client: redis.Redis, keys: Keys) -> None:
    program = load_program(PROGRAM)
    ledger = RedisLedger(redis_client, keys, program)
    rng = random.Random(17)
    walks = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for customer in ("c1", "c2", "c3"):
        truth: list[tuple[int, int]] = []  # (epoch, tier) after every call that can move it
        tier, moment, n = 0, start, 0
        reviewed = add_months(start, 1)
        while moment < datetime(2026, 9, 1, tzinfo=UTC):
            moment += timedelta(days=rng.choice([3, 9, 30, 75]))
            while reviewed <= moment:  # run the period-end review like `centric loyalty expire` would
                eve = reviewed - timedelta(seconds=1)
                got = ledger.expire(customer, eve, review_tier=True)["tier"]
                if got != tier:
                    truth.append((int(eve.timestamp()), got))
                    tier = got
                reviewed = add_months(reviewed, 1)
            n += 1
            amount = Decimal(rng.choice([40, 150, 600, 1500]))
            result = ledger.earn(customer, f"{customer}-o{n}", amount, [Line("i", Decimal(1), amount)], moment, f"k{n}")
            if rng.random() < 0.2:
                result = ledger.reverse(customer, f"{customer}-o{n}", amount / 2, moment + timedelta(hours=1), f"r{n}")
            if result["tier"] != tier:
                truth.append((int(moment.timestamp()), result["tier"]))
                tier = result["tier"]
        replay = replay_customer(ledger.entries(customer), TierRules.of(program), moment)
        assert [(m.at, m.after) for m in replay.moves] == truth, customer
        assert replay.tier == ledger.account(customer)["tier"]
        walks.append(replay.moves)
    # the random walk above must really have moved tiers both ways, or it proves little
    assert any(m.after > m.before for moves in walks for m in moves)
    assert any(m.after < m.before for moves in walks for m in moves)
