"""Concurrency: processes drive random earn/redeem/reverse with duplicate retries through uvicorn; then the books
balance."""

from __future__ import annotations

import json
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx
import redis

from recsys.store.keys import Keys
from serving.auth import create_api_key
from tests.helpers.http import uvicorn_server

ROOT = Path(__file__).resolve().parents[2]

CUSTOMERS = ["a", "b", "c"]


def _drive(base: str, token: str, seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    acked = []
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=20) as http,
        ThreadPoolExecutor(2) as pool,
    ):
        for i in range(n):
            cid, key = rng.choice(CUSTOMERS), f"s{seed}-{i}"
            kind = rng.choice(["earn", "earn", "redeem", "reverse"])
            if kind == "earn":
                path, body = (
                    f"/v1/customers/{cid}/loyalty/earn",
                    {"order_id": f"{seed}-{i}", "amount": str(rng.randint(1, 900))},
                )
            elif kind == "redeem":
                path, body = (
                    f"/v1/customers/{cid}/loyalty/redeem",
                    {"reward_id": "coffee", "quantity": rng.randint(1, 2)},
                )
            else:
                path, body = f"/v1/customers/{cid}/loyalty/reverse", {"order_id": f"{seed}-{rng.randrange(max(i, 1))}"}
            # the same request twice at once: a client retry racing the original
            futures = [pool.submit(http.post, path, json=body, headers={"Idempotency-Key": key}) for _ in range(2)]
            for f in futures:
                r = f.result()
                assert r.status_code in (200, 404, 409), r.text
                if r.status_code == 200:
                    acked.append({"customer_id": cid, **r.json()})
    return acked


def test_concurrent_http_writes_with_retries_balance(redis_url: str, keys: Keys, redis_client: redis.Redis) -> None:
    redis_client.hset(keys.loyalty_stock("coffee"), "stock", 6)  # scarce, so out_of_stock is exercised
    token = create_api_key(redis_client, keys, "write", name="concurrency")
    with uvicorn_server(
        redis_url, keys, CENTRIC_LOYALTY_PROGRAM=str(ROOT / "tests" / "fixtures" / "loyalty.toml")
    ) as base:
        with ProcessPoolExecutor(3) as procs:
            acked = [a for part in procs.map(_drive, [base] * 3, [token] * 3, range(3), [40] * 3) for a in part]

    assert len(acked) > 60  # most of the 240 requests were acknowledged (refusals are 404/409)
    by_id: dict[str, dict] = {}
    for a in acked:
        # a retry answers the very same entry as the original
        assert by_id.setdefault(a["entry"]["id"], a["entry"]) == a["entry"]
    redeemed = 0
    for cid in CUSTOMERS:
        entries = [json.loads(e) for e in redis_client.lrange(keys.loyalty_entries(cid), 0, -1)]
        stored = {e["id"] for e in entries}
        assert {i for i, e in by_id.items() if e["customer_id"] == cid} <= stored
        keyed = [e["idempotency_key"] for e in entries if e["idempotency_key"]]
        assert len(keyed) == len(set(keyed))  # no duplicate effects
        balance = int(redis_client.hget(keys.loyalty_account(cid), "balance") or 0)
        assert balance == sum(e["amount"] for e in entries) >= 0
        redeemed += sum(-e["amount"] // 300 for e in entries if e["type"] == "redeem")
    assert redeemed > 0
    assert int(redis_client.hget(keys.loyalty_stock("coffee"), "stock")) == 6 - redeemed >= 0
