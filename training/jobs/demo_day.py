"""``centric demo --next-day``: one day of shoppers played through the HTTP API, then the daily cycle again.

``play_day`` is the day: for each shopper it reads their recommendations and offers from the service, posts views
and clicks of the recommendations, an order holding an item they never bought (a "personalized" suggestion) and,
when they have one, an item they buy again, impressions of the offers shown, a dismissal and a redemption, and
redeems a loyalty reward when the balance allows. ``observe`` reads back, after the pipeline ran again, whether
the orders are in the history, whether each first-time item left its buyer's new-item suggestions, and what the
ledger and the offer counters hold. Everything goes through the public API except the offer counters and the
history files, which have no endpoint (read from Redis through ``Keys`` and from the pipeline's work folder).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import redis

from recsys.clock import utcnow
from recsys.exceptions import CentricError
from recsys.store.keys import Fields, Keys

NEW_ITEM_SOURCE = "personalized"  # a recommended item the customer never bought (see train_outputs.with_reasons)
REPEAT_SOURCE = "buy_again"
K = 20


class DayFailed(CentricError):
    """The service answered the next day's requests with an error."""


@dataclass
class Shopper:
    """What one customer did during the day, and what the service showed them."""

    customer_id: str
    order_id: str
    new_item: str  # bought for the first time today: a "personalized" suggestion before
    new_item_name: str
    new_item_rank: int
    repeat_item: str | None
    viewed: list[str]
    clicked: str
    offers_shown: list[str]
    offer_redeemed: str | None
    offer_dismissed: str | None
    reward_redeemed: str | None
    balance_before: int
    after: dict[str, Any] = field(default_factory=dict)


@dataclass
class Day:
    """The day played: its shoppers and the counts of what was posted."""

    day: str
    shoppers: list[Shopper]
    events: int = 0
    purchase_lines: int = 0
    counters_before: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def local_service(redis_url: str, env: str) -> Iterator[str]:
    """Run ``centric serve``'s app in a uvicorn subprocess on a free loopback port; yield its base URL."""
    from serving.hotpath.http_protocol import PROTOCOL

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--log-level", "warning", "--http", PROTOCOL]
    server = subprocess.Popen(command, env={**os.environ, "CENTRIC_REDIS_URL": redis_url, "CENTRIC_ENV": env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise DayFailed(f"the service did not become ready on {base} (exit code {server.poll()})")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _call(http: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    answer = http.request(method, url, **kwargs)
    if answer.status_code >= 400:
        raise DayFailed(f"{method} {url}: HTTP {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def offer_counters(client: redis.Redis, keys: Keys, offer_ids: list[str]) -> dict[str, int]:
    """Return each offer's redemption counter (the budget hash the service updates on ``redeem`` events)."""
    out = {}
    for offer_id in offer_ids:
        value = client.hget(keys.nba_budget(offer_id), Fields.BUDGET_REDEMPTIONS)
        out[offer_id] = int(value or 0)
    return out


def _shoppers(artifacts: Path, count: int, seed: int) -> list[str]:
    recs = pl.read_parquet(artifacts / "recommendations.parquet")
    ids = recs.filter(pl.col("source") == NEW_ITEM_SOURCE).get_column("customer_id").unique().sort()
    return ids.sample(n=min(count, ids.len()), seed=seed).sort().to_list()


def _items(artifacts: Path) -> dict[str, tuple[str, float]]:
    items = pl.read_parquet(artifacts / "items.parquet", columns=["item_id", "name", "price"])
    return {str(i): (str(n or i), float(p or 1.0)) for i, n, p in items.iter_rows()}


def play_day(
    http: httpx.Client, client: redis.Redis, keys: Keys, artifacts: Path, *, shoppers: int = 20, seed: int = 1
) -> Day:
    """Play one day for ``shoppers`` customers through the API behind ``http`` (authorised with a write key).

    Returns what each did. Raises ``DayFailed`` when the service refuses a request.
    """
    day = utcnow().date().isoformat()
    items = _items(artifacts)
    played = Day(day=day, shoppers=[])
    events: list[dict[str, Any]] = []
    offer_ids: set[str] = set()
    for customer in _shoppers(artifacts, shoppers, seed):
        recs = _call(http, "GET", f"/v1/customers/{customer}/recommendations", params={"k": K})["items"]
        new = [(rank, r["item_id"]) for rank, r in enumerate(recs, 1) if r["source"] == NEW_ITEM_SOURCE]
        if not new:  # live fold-in may already have changed the list; such a customer sits the day out
            continue
        rank, new_item = new[0]
        repeat = next((r["item_id"] for r in recs if r["source"] == REPEAT_SOURCE), None)
        viewed = [r["item_id"] for r in recs[:3]]
        order = f"demo-{day}-{customer}"
        events += [{"type": "view", "customer_id": customer, "item_id": i, "channel": "web"} for i in viewed]
        events.append({"type": "click", "customer_id": customer, "item_id": new_item, "channel": "web"})
        for item in [new_item, *([repeat] if repeat else [])]:
            line = {"customer_id": customer, "item_id": item, "order_id": order, "quantity": 1.0}
            events.append({"type": "purchase", **line, "price": items.get(item, ("", 1.0))[1]})
            played.purchase_lines += 1
        offers = _call(http, "GET", f"/v1/customers/{customer}/offers", params={"k": 3})["offers"]
        shown = [o["offer_id"] for o in offers]
        offer_ids.update(shown)
        events += [{"type": "impression", "customer_id": customer, "offer_id": o, "channel": "app"} for o in shown]
        redeemed = shown[0] if shown else None
        dismissed = shown[-1] if len(shown) > 1 else None
        if redeemed:
            events.append({"type": "redeem", "customer_id": customer, "offer_id": redeemed, "channel": "app"})
        if dismissed:
            events.append({"type": "dismiss", "customer_id": customer, "offer_id": dismissed, "channel": "app"})
        account = _call(http, "GET", f"/v1/customers/{customer}/loyalty")
        affordable = [r for r in account["rewards"] if r["affordable"]]
        reward = min(affordable, key=lambda r: r["cost"])["reward_id"] if affordable else None
        if reward:
            _call(
                http,
                "POST",
                f"/v1/customers/{customer}/loyalty/redeem",
                json={"reward_id": reward, "quantity": 1},
                headers={"Idempotency-Key": f"{order}-reward"},
            )
        name = items.get(new_item, (new_item, 0.0))[0]
        played.shoppers.append(
            Shopper(
                customer_id=customer,
                order_id=order,
                new_item=new_item,
                new_item_name=name,
                new_item_rank=rank,
                repeat_item=repeat,
                viewed=viewed,
                clicked=new_item,
                offers_shown=shown,
                offer_redeemed=redeemed,
                offer_dismissed=dismissed,
                reward_redeemed=reward,
                balance_before=account["balance"],
            )
        )
    played.counters_before = offer_counters(client, keys, sorted(offer_ids))
    for start in range(0, len(events), 1000):
        batch = events[start : start + 1000]
        _call(http, "POST", "/v1/events", json={"events": batch}, headers={"Idempotency-Key": f"demo-{day}-{start}"})
    played.events = len(events)
    return played


def observe(http: httpx.Client, client: redis.Redis, keys: Keys, work: Path, day: Day) -> dict[str, Any]:
    """Read back, after the pipeline ran again, what the day changed; fill each shopper's ``after``; return totals.

    Totals: ``orders_in_history`` (of ``orders``), ``new_items_still_suggested`` (first-time items still shown to
    their buyer as a new-item suggestion: 0 when recommendations moved), ``earned_in_ledger`` (orders whose earn
    is on the statement), ``rewards_in_ledger`` (reward redemptions on the statement), ``offer_redemptions``
    (the counters' increase) and ``offer_redeem_events``.
    """
    history = pl.read_parquet(work / "history" / "current" / "event_transactions.parquet")
    orders = set(history.get_column("order_id").to_list())
    totals = dict.fromkeys(("orders_in_history", "new_items_still_suggested", "earned_in_ledger"), 0)
    totals["rewards_in_ledger"] = 0
    for s in day.shoppers:
        recs = _call(http, "GET", f"/v1/customers/{s.customer_id}/recommendations", params={"k": K})["items"]
        now = next(((rank, r["source"]) for rank, r in enumerate(recs, 1) if r["item_id"] == s.new_item), None)
        entries = _call(http, "GET", f"/v1/customers/{s.customer_id}/loyalty/history", params={"limit": 200})
        earned = [e for e in entries["entries"] if e["type"] == "earn" and e["source"] == s.order_id]
        rewards = [e for e in entries["entries"] if e["type"] == "redeem" and e["source"] == s.reward_redeemed]
        account = _call(http, "GET", f"/v1/customers/{s.customer_id}/loyalty")
        s.after = {
            "in_history": s.order_id in orders,
            "new_item_now": f"{now[1]} #{now[0]}" if now else "not listed",
            "points_earned": sum(e["amount"] for e in earned),
            "reward_on_statement": bool(rewards),
            "balance": account["balance"],
        }
        totals["orders_in_history"] += s.order_id in orders
        totals["new_items_still_suggested"] += bool(now and now[1] == NEW_ITEM_SOURCE)
        totals["earned_in_ledger"] += bool(earned)
        totals["rewards_in_ledger"] += bool(rewards)
    after = offer_counters(client, keys, sorted(day.counters_before))
    totals["orders"] = len(day.shoppers)
    totals["rewards_redeemed"] = sum(s.reward_redeemed is not None for s in day.shoppers)
    totals["offer_redeem_events"] = sum(s.offer_redeemed is not None for s in day.shoppers)
    totals["offer_redemptions"] = sum(after[o] - day.counters_before[o] for o in after)
    return totals
