"""The dashboard's loyalty side over HTTP: the paginated statement, tier movements and the typed loyalty figures."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import redis

from tests.helpers.ui_demo import UiDemo, bearer_header, run_ui, sign_in


def test_loyalty_history_pages_through_the_whole_statement_newest_first(ui_demo: UiDemo) -> None:
    cid = ui_demo.customer_id

    async def script(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        h = bearer_header(ui_demo.read_key)
        pages, offset = [], 0
        while offset is not None:
            page = await client.get(
                f"/v1/customers/{cid}/loyalty/history", headers=h, params={"offset": offset, "limit": 7}
            )
            assert page.status_code == 200, page.text
            pages.append(page.json())
            offset = page.json()["next_offset"]
        pages.append((await client.get("/v1/customers/nobody/loyalty/history", headers=h)).json())
        return pages

    *pages, nobody = run_ui(ui_demo, script)
    client = redis.Redis.from_url(ui_demo.redis_url)
    try:
        stored = client.lrange(ui_demo.keys.loyalty_entries(cid), 0, -1)
    finally:
        client.close()
    entries = [e for p in pages for e in p["entries"]]
    assert pages[0]["total"] == len(stored) == len(entries) > 7
    assert [e["entry_id"] for e in entries] == [f"{cid}:{n}" for n in range(len(stored), 0, -1)]
    assert all(e["type"] for e in entries) and sum(e["amount"] for e in entries) != 0
    assert nobody["total"] == 0 and nobody["entries"] == [] and nobody["next_offset"] is None


def test_loyalty_history_cursor_does_not_repeat_entries_when_new_ones_arrive_between_pages(ui_demo: UiDemo) -> None:
    cid = ui_demo.customer_id

    async def script(client: httpx.AsyncClient) -> list[Any]:
        read, admin = bearer_header(ui_demo.read_key), bearer_header(ui_demo.admin_key)
        url = f"/v1/customers/{cid}/loyalty/history"
        first = (await client.get(url, headers=read, params={"limit": 3})).json()
        grant = {"grants": [{"customer_id": cid, "points": 5}], "reason": "between two pages"}
        granted = await client.post("/v1/loyalty/grants", json=grant, headers={**admin, "Idempotency-Key": "r17-page"})
        assert granted.status_code == 200, granted.text
        second = (await client.get(url, headers=read, params={"limit": 3, "before": first["next_before"]})).json()
        bounds = [
            (await client.get(url, headers=read, params={"before": b})).status_code for b in ("0", "-1", str(2**40))
        ]
        oldest = (await client.get(url, headers=read, params={"before": 1})).json()
        huge = (await client.get(url, headers=read, params={"before": 2**31, "limit": 1})).json()
        return [first, second, bounds, oldest, huge]

    first, second, bounds, oldest, huge = run_ui(ui_demo, script)
    total = first["total"]
    assert [e["entry_id"] for e in first["entries"]] == [f"{cid}:{n}" for n in range(total, total - 3, -1)]
    assert first["next_before"] == total - 2
    # the new entry is not on the second page, and nothing of the first page comes again
    assert second["total"] == total + 1
    assert [e["entry_id"] for e in second["entries"]] == [f"{cid}:{n}" for n in range(total - 3, total - 6, -1)]
    assert bounds == [422, 422, 422]
    assert oldest["entries"] == [] and oldest["next_before"] is None and oldest["next_offset"] is None
    assert huge["entries"][0]["entry_id"] == f"{cid}:{total + 1}"  # a cursor past the end starts at the newest


def test_loyalty_page_tier_movements_match_a_replay_of_every_statement(ui_demo: UiDemo) -> None:
    from recsys.analytics.tier_movements import TierMovements, TierRules, replay_customer
    from recsys.loyalty.ledger import RedisLedger
    from recsys.loyalty.program import load_program
    from tests.helpers.ui_demo import PROGRAM

    async def script(client: httpx.AsyncClient) -> tuple[str, str]:
        api = (await client.get("/v1/dashboard/loyalty", headers=bearer_header(ui_demo.read_key))).json()
        await sign_in(client, ui_demo.read_key)
        return (await client.get("/ui/loyalty")).text, api["history_computed_at"]

    html, computed_at = run_ui(ui_demo, script)
    as_of = dt.datetime.fromisoformat(computed_at)  # the moment the service replayed at, not the test's clock
    program = load_program(PROGRAM)
    client = redis.Redis.from_url(ui_demo.redis_url)
    try:
        ledger = RedisLedger(client, ui_demo.keys, program)
        expected = TierMovements(len(program.tiers))
        accounts = [0] * len(program.tiers)
        for customer in ledger.customers():
            expected.add(replay_customer(ledger.entries(customer), TierRules.of(program), as_of))
            accounts[ledger.account(customer)["tier"]] += 1
    finally:
        client.close()
    rows = expected.table([t.name for t in program.tiers])
    assert sum(r["upgrades"] for r in rows) > 0, "the demo should move some members up a tier"
    for row in rows[-12:]:
        found = re.search(rf'<tr data-month="{row["month"]}">(.*?)</tr>', html, re.S)
        assert found, f"month {row['month']} missing from the tier movements table"
        assert f'data-value="{row["upgrades"]}"' in found.group(1)
        assert f'data-value="{row["downgrades"]}"' in found.group(1)
    assert 'id="chart-movements"' in html
    # the demo's accounts were never reviewed at a period end, yet all its history is inside the 12-month window
    assert expected.current == accounts and "gives these same tiers" in html


def test_dashboard_endpoints_are_typed_in_openapi_and_the_loyalty_figures_match_the_page(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str]:
        spec = (await client.get("/openapi.json")).json()
        api = (await client.get("/v1/dashboard/loyalty", headers=bearer_header(ui_demo.read_key))).json()
        await sign_in(client, ui_demo.read_key)
        return spec, api, (await client.get("/ui/loyalty")).text

    spec, api, html = run_ui(ui_demo, script)
    for path, model in (
        ("/v1/dashboard/overview", "OverviewPublic"),
        ("/v1/dashboard/loyalty", "LoyaltyFiguresPublic"),
    ):
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
    parts = spec["components"]["schemas"]
    assert parts["DashboardDocument"]["properties"]["rfm"]["items"] == {"$ref": "#/components/schemas/RfmCell"}
    assert set(parts["EvaluationRow"]["properties"]) >= {"model", "ndcg@10", "recall@10"}
    assert set(parts["TierMove"]["properties"]) == {"from", "to", "customers"}
    assert api["summary"]["members"] == 120 and api["months"]
    assert f'data-value="{api["summary"]["liability_points"]}">{api["summary"]["liability_points"]:,}<' in html
    for month in api["tier_movements"][-12:]:
        row = re.search(rf'<tr data-month="{month["month"]}">(.*?)</tr>', html, re.S)
        assert row and f'data-value="{month["upgrades"]}"' in row.group(1)
        for move in month["moves"]:
            assert f"{move['from']} → {move['to']}: {move['customers']:,}" in row.group(1)
