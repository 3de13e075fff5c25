"""Property tests: random operation sequences (with retries) keep the ledger invariants, on real Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.exceptions import CentricError
from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.store.keys import Keys

PROGRAM = load_program(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
CUSTOMERS = ["a", "b"]

op = st.one_of(
    st.tuples(st.just("earn"), st.sampled_from(CUSTOMERS), st.integers(0, 5), st.integers(0, 3000)),
    st.tuples(
        st.just("redeem"), st.sampled_from(CUSTOMERS), st.sampled_from(["coffee", "voucher-10"]), st.integers(1, 3)
    ),
    st.tuples(st.just("reverse"), st.sampled_from(CUSTOMERS), st.integers(0, 5), st.integers(0, 3000)),
    st.tuples(st.just("adjust"), st.sampled_from(CUSTOMERS), st.integers(-500, 500), st.just(0)),
)
step = st.tuples(op, st.integers(0, 200), st.booleans())  # (operation, days later, retry with the same key)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_random_sequences_keep_invariants(redis_client, keys, steps):
    ns = Keys(f"{keys.env}-{abs(hash(json.dumps(steps, default=str))) % 10**9}")  # fresh namespace per example
    ledger = RedisLedger(redis_client, ns, PROGRAM)
    redis_client.hset(ns.loyalty_stock("coffee"), "stock", 4)
    redis_client.hset(ns.loyalty_stock("voucher-10"), "stock", 4)
    now, redeemed = T0, {"coffee": 0, "voucher-10": 0}
    try:
        for n, ((kind, cid, a, b), days, retry) in enumerate(steps):
            now += timedelta(days=days)
            attempts = 2 if retry else 1
            for _ in range(attempts):
                before = ledger.account(cid)
                try:
                    if kind == "earn":
                        out = ledger.earn(cid, f"o{a}", Decimal(b), [], now, f"k{n}")
                    elif kind == "redeem":
                        out = ledger.redeem(cid, a, b, now, f"k{n}")
                        if not out["replayed"]:
                            redeemed[a] += b
                    elif kind == "reverse":
                        out = ledger.reverse(cid, f"o{a}", Decimal(b) if b else None, now, f"k{n}")
                    else:
                        out = ledger.grant(cid, a, "adjust", now, f"k{n}", op="adjust") if a else None
                except CentricError:
                    out = None
                    after = ledger.account(cid)
                    # refused: nothing changed except lots that came due being expired
                    assert after["balance"] <= before["balance"]
                if out is not None and out["replayed"]:
                    assert ledger.account(cid)["balance"] == before["balance"]
            for c in CUSTOMERS:
                acct = ledger.account(c)
                entries = ledger.entries(c)
                assert acct["balance"] >= 0
                assert acct["balance"] == sum(e["amount"] for e in entries) == sum(acct["lots"].values())
                assert len({e["idempotency_key"] for e in entries if e["idempotency_key"]}) == sum(
                    1 for e in entries if e["idempotency_key"]
                )
            for reward, used in redeemed.items():
                assert ledger.stock(reward) == 4 - used >= 0
        for c in CUSTOMERS:
            for raw in redis_client.hvals(ns.loyalty_orders(c)):
                order = json.loads(raw)
                assert 0 <= order["reversed"] <= order["earned"]
    finally:
        for key in redis_client.scan_iter(match=ns.pattern()):
            redis_client.delete(key)
