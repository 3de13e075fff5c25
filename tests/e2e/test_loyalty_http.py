"""Loyalty over HTTP on real Redis: standing, earn/redeem/reverse/grants, idempotency and error shapes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from tests.helpers.http import bearer

PROGRAM = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml"


def _run(redis_url: str, keys: Keys, script) -> Any:
    async def body() -> Any:
        app = create_app(Settings(redis_url=redis_url, env=keys.env, loyalty_program=PROGRAM), gc_tuning=False)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
                return await script(http)

    return asyncio.run(body())


def test_earn_redeem_and_standing(redis_url: str, keys: Keys) -> None:
    w, r = bearer(redis_url, keys, "write"), bearer(redis_url, keys, "read")

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        earn = {"order_id": "o1", "amount": "2500.00", "items": [{"item_id": "i1", "quantity": 1, "price": "2500.00"}]}
        a = await http.post("/v1/customers/c1/loyalty/earn", json=earn, headers={**w, "Idempotency-Key": "k1"})
        b = await http.post("/v1/customers/c1/loyalty/earn", json=earn, headers={**w, "Idempotency-Key": "k1"})
        c = await http.post(
            "/v1/customers/c1/loyalty/redeem",
            json={"reward_id": "coffee", "quantity": 2},
            headers={**w, "Idempotency-Key": "k2"},
        )
        d = await http.get("/v1/customers/c1/loyalty", headers=r)
        return [a, b, c, d]

    a, b, c, d = _run(redis_url, keys, script)
    assert a.status_code == 200, a.text
    assert b.json()["replayed"] and b.json()["entry"] == a.json()["entry"]
    assert c.status_code == 200 and c.json()["balance"] == a.json()["balance"] - 600
    view = d.json()
    assert view["balance"] == c.json()["balance"] and view["tier"] == "Silver" and view["next_tier"] == "Gold"
    assert view["points_to_next_tier"] == 6000 - a.json()["entry"]["points"]
    assert {x["reward_id"] for x in view["rewards"]} == {"coffee", "voucher-10"}
    assert view["expiring_30d"] == 0


def test_write_errors_are_specific(redis_url: str, keys: Keys) -> None:
    w = bearer(redis_url, keys, "write")

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        earn = {"order_id": "o1", "amount": "10"}
        out = [await http.post("/v1/customers/c2/loyalty/earn", json=earn, headers=w)]
        out.append(await http.post("/v1/customers/c2/loyalty/earn", json=earn, headers={**w, "Idempotency-Key": "k"}))
        out.append(
            await http.post(
                "/v1/customers/c2/loyalty/earn", json={**earn, "amount": "11"}, headers={**w, "Idempotency-Key": "k"}
            )
        )
        out.append(
            await http.post(
                "/v1/customers/c2/loyalty/redeem",
                json={"reward_id": "voucher-10"},
                headers={**w, "Idempotency-Key": "r"},
            )
        )
        out.append(
            await http.post(
                "/v1/customers/c2/loyalty/redeem", json={"reward_id": "nope"}, headers={**w, "Idempotency-Key": "r2"}
            )
        )
        out.append(
            await http.post(
                "/v1/loyalty/grants",
                json={"reason": "x", "grants": [{"customer_id": "c2", "points": 5}]},
                headers={**w, "Idempotency-Key": "g"},
            )
        )
        return out

    missing, ok, reused, poor, unknown, grant = _run(redis_url, keys, script)
    assert missing.status_code in (400, 422) and "Idempotency-Key" in missing.text
    assert ok.status_code == 200
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_conflict"
    assert poor.status_code == 409 and poor.json()["code"] == "insufficient_points"
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_reward"
    assert grant.status_code == 403


def test_bulk_grant_and_reverse(redis_url: str, keys: Keys) -> None:
    w, admin = bearer(redis_url, keys, "write"), bearer(redis_url, keys, "admin")

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        g = {"reason": "apology", "grants": [{"customer_id": "x", "points": 50}, {"customer_id": "y", "points": 70}]}
        a = await http.post("/v1/loyalty/grants", json=g, headers={**admin, "Idempotency-Key": "g1"})
        await http.post(
            "/v1/customers/x/loyalty/earn",
            json={"order_id": "o", "amount": "40"},
            headers={**w, "Idempotency-Key": "e"},
        )
        part = [{"item_id": "i", "quantity": 1, "price": "10"}]
        b = await http.post(
            "/v1/customers/x/loyalty/reverse",
            json={"order_id": "o", "items": part},
            headers={**w, "Idempotency-Key": "v"},
        )
        return [a, b]

    a, b = _run(redis_url, keys, script)
    assert [x["balance"] for x in a.json()["results"]] == [50, 70]
    assert b.status_code == 200, b.text
    # the order earned 40 + the 100-point first-purchase bonus; returning a quarter of it reverses a quarter
    assert b.json()["entry"]["points"] == (40 + 100) // 4


def test_live_earn_applies_the_category_multiplier_from_the_snapshot(
    tmp_path: Path, redis_url: str, keys: Keys, redis_client
) -> None:
    """The example program doubles PRODUCE: an order's lines take their category from the active snapshot's items,
    through the fast write path and the routed path alike (the fast path answers cached-key JSON requests)."""
    import polars as pl

    from tests.helpers.http import write_artifacts
    from training.jobs.publish import run_publish

    art = write_artifacts(tmp_path / "art")
    items = pl.read_parquet(art / "items.parquet")
    items.with_columns(
        pl.when(pl.col("item_id") == "milk").then(pl.lit("PRODUCE")).otherwise(pl.col("category")).alias("category")
    ).write_parquet(art / "items.parquet")
    run_publish(redis_client, keys, art)
    w = bearer(redis_url, keys, "write")

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        out = []
        for cid, item in (("p1", "milk"), ("p2", "tea"), ("p3", "unknown-sku")):
            earn = {"order_id": "o1", "amount": "50.00", "items": [{"item_id": item, "quantity": 1, "price": "50.00"}]}
            out.append(
                await http.post(f"/v1/customers/{cid}/loyalty/earn", json=earn, headers={**w, "Idempotency-Key": "k"})
            )
        return out

    produce, drinks, unknown = _run(redis_url, keys, script)
    bonus = 100  # first purchase
    assert produce.json()["balance"] == 2 * 50 + bonus
    assert drinks.json()["balance"] == unknown.json()["balance"] == 50 + bonus


def test_a_grant_listing_a_customer_twice_is_refused_naming_them(redis_url: str, keys: Keys) -> None:
    admin = bearer(redis_url, keys, "admin")
    lines = [{"customer_id": c, "points": 5} for c in ("b", "a", "b", "c", "a")]

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        twice = await http.post(
            "/v1/loyalty/grants", json={"reason": "x", "grants": lines}, headers={**admin, "Idempotency-Key": "g"}
        )
        standing = await http.get("/v1/customers/a/loyalty", headers=admin)
        return [twice, standing]

    twice, standing = _run(redis_url, keys, script)
    # 409, not 422: the schema cannot state "unique by customer_id", so the refusal is the flow's domain error
    assert twice.status_code == 409 and twice.json()["code"] == "duplicate_grant_customer"
    assert "customers listed more than once in one grant: ['a', 'b']" in twice.text
    assert standing.json()["balance"] == 0
