"""The web UI over HTTP on the demo: sign-in and cookies, access rules, CSRF, caching headers, numbers vs the API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import redis
import redis.asyncio

from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from serving.auth import create_api_key, revoke_api_key
from tests.helpers.ui_demo import UiDemo, bearer_header, csrf_token, run_ui, sign_in, ui_client, write_pipeline_reports
from training.jobs.campaign import run_select
from training.jobs.publish import run_publish
from training.pipeline.state import STAGES

pytestmark = pytest.mark.xdist_group("ui")
PAGES = ("/ui", "/ui/customers", "/ui/models", "/ui/campaigns", "/ui/loyalty")


def test_pages_need_a_session_and_say_where_to_sign_in(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get(p) for p in (*PAGES, "/")]

    *pages, root = run_ui(ui_demo, script)
    for response in pages:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login?next=/ui")
    assert root.status_code == 307 and root.headers["location"] == "/ui"


def test_sign_in_sets_a_strict_httponly_cookie_and_a_wrong_key_is_refused(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        bad = await sign_in(client, "ck_nope_nope")
        good = await sign_in(client, ui_demo.read_key)
        return bad, good

    bad, good = run_ui(ui_demo, script)
    assert bad.status_code == 401 and "not valid here" in bad.text and "set-cookie" not in bad.headers
    assert good.status_code == 303 and good.headers["location"] == "/ui"
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    assert ui_demo.read_key not in good.headers["set-cookie"]


def test_the_cookie_is_secure_over_https(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> httpx.Response:
        return await sign_in(client, ui_demo.read_key)

    response = run_ui(ui_demo, script, base_url="https://centric.test")
    assert "secure" in response.headers["set-cookie"].lower()


def test_every_page_renders_for_a_read_key_uncached_and_without_raw_json(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        await sign_in(client, ui_demo.read_key)
        return [await client.get(p) for p in (*PAGES, f"/ui/customers?id={ui_demo.customer_id}")]

    for response in run_ui(ui_demo, script):
        assert response.status_code == 200, (response.url, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        assert "script-src" not in response.headers["content-security-policy"]  # no script allowed at all
        assert "<script" not in response.text
        assert '{"' not in response.text and "&#34;" not in response.text, f"raw JSON on {response.url}"


def test_overview_figures_match_the_api(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
        api = (await client.get("/v1/dashboard/overview", headers=bearer_header(ui_demo.read_key))).json()
        await sign_in(client, ui_demo.read_key)
        return api, (await client.get("/ui")).text

    api, html = run_ui(ui_demo, script)
    doc = api["snapshot"]["dashboard"]
    profiles = pl.read_parquet(ui_demo.artifacts / "profiles.parquet")
    assert doc["customers"] == profiles.height == 120
    assert sum(c["customers"] for c in doc["rfm"]) == 120
    assert sum(s["customers"] for s in doc["lifecycle"]) == 120
    assert sum(b["customers"] for b in doc["clv_histogram"]) == 120
    assert doc["revenue"] == pytest.approx(profiles.get_column("total_spend").sum(), abs=0.01)
    assert f'data-value="{doc["customers"]}"' in html
    for stage in doc["lifecycle"]:
        assert f'data-value="{stage["customers"]}"' in html
    loyalty = api["loyalty"]
    assert loyalty["members"] == 120
    assert f'data-value="{loyalty["liability_points"]}"' in html
    assert sum(t["members"] for t in loyalty["tiers"]) == 120


def test_customer_page_shows_the_api_recommendations_and_offers(ui_demo: UiDemo) -> None:
    cid = ui_demo.customer_id

    async def script(client: httpx.AsyncClient) -> tuple[Any, Any, str, httpx.Response]:
        h = bearer_header(ui_demo.read_key)
        recs = (await client.get(f"/v1/customers/{cid}/recommendations", headers=h, params={"k": 10})).json()
        offers = (await client.get(f"/v1/customers/{cid}/offers", headers=h, params={"channel": "app"})).json()
        await sign_in(client, ui_demo.read_key)
        page = (await client.get("/ui/customers", params={"id": cid})).text
        missing = await client.get("/ui/customers", params={"id": "no-such-customer"})
        return recs, offers, page, missing

    recs, offers, page, missing = run_ui(ui_demo, script)
    assert recs["items"] and offers["offers"]
    for item in recs["items"]:
        assert f'data-item="{item["item_id"]}"' in page
    for offer in offers["offers"]:
        assert f'data-offer="{offer["offer_id"]}"' in page
    assert "Loyalty statement" in page and "earn" in page
    assert missing.status_code == 404 and "no-such-customer" in missing.text


def test_read_key_cannot_export_or_grant_and_forms_without_csrf_are_refused(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        await sign_in(client, ui_demo.read_key)
        page = (await client.get("/ui/campaigns")).text
        token = csrf_token(page)
        form = {"offer": "winback15", "budget": "5", "csrf": token}
        out = [await client.post("/ui/campaigns/audience.csv", data=form)]
        out.append(
            await client.post(
                "/ui/loyalty/grants/apply", data={"text": "customer_id,points\nx,5\n", "reason": "r", "csrf": token}
            )
        )
        await sign_in(client, ui_demo.admin_key)
        out.append(await client.post("/ui/campaigns/audience.csv", data={"offer": "winback15", "budget": "5"}))
        out.append(
            await client.post("/ui/campaigns/audience.csv", data={"offer": "winback15", "budget": "5", "csrf": "bad"})
        )
        out.append(
            await client.post("/ui/loyalty/grants/apply", data={"text": "customer_id,points\nx,5\n", "reason": "r"})
        )
        return out

    read_export, read_grant, no_csrf, bad_csrf, grant_no_csrf = run_ui(ui_demo, script)
    for response in (read_export, read_grant):
        assert response.status_code == 403 and "admin API key" in response.text
    for response in (no_csrf, bad_csrf, grant_no_csrf):
        assert response.status_code == 403 and "CSRF" in response.text
    assert "text/html" in no_csrf.headers["content-type"]


def test_audience_csv_matches_centric_campaign_select(ui_demo: UiDemo, tmp_path: Path) -> None:
    async def script(client: httpx.AsyncClient) -> httpx.Response:
        await sign_in(client, ui_demo.admin_key)
        page = await client.get("/ui/campaigns", params={"offer": "snacks_crosssell", "budget": "3"})
        assert page.status_code == 200 and "expected redemptions" in page.text
        form = {"offer": "snacks_crosssell", "budget": "3", "channel": "", "csrf": csrf_token(page.text)}
        return await client.post("/ui/campaigns/audience.csv", data=form)

    response = run_ui(ui_demo, script)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    cli = run_select(ui_demo.artifacts, "snacks_crosssell", 3, tmp_path / "audience.csv")
    assert cli["customers"] > 0
    assert response.content == (tmp_path / "audience.csv").read_bytes()


def test_bulk_grant_previews_then_applies_once(ui_demo: UiDemo) -> None:
    profiles = pl.read_parquet(ui_demo.artifacts / "profiles.parquet")
    a, b = sorted(profiles.get_column("customer_id").to_list())[-2:]
    csv_text = f"customer_id,points\n{a},70\n{b},30\n"

    async def script(client: httpx.AsyncClient) -> list[Any]:
        h = bearer_header(ui_demo.read_key)
        before = (await client.get(f"/v1/customers/{a}/loyalty", headers=h)).json()["balance"]
        await sign_in(client, ui_demo.admin_key)
        token = csrf_token((await client.get("/ui/loyalty")).text)
        files = {"file": ("grants.csv", csv_text.encode(), "text/csv")}
        bad = await client.post(
            "/ui/loyalty/grants/preview",
            files={"file": ("bad.csv", b"customer_id,points\nz,-3\ny,4\ny,5\n", "text/csv")},
            data={"reason": "sorry", "csrf": token},
        )
        preview = await client.post("/ui/loyalty/grants/preview", files=files, data={"reason": "sorry", "csrf": token})
        after_preview = (await client.get(f"/v1/customers/{a}/loyalty", headers=h)).json()["balance"]
        form = {"text": csv_text, "reason": "sorry", "csrf": token}
        first = await client.post("/ui/loyalty/grants/apply", data=form)
        second = await client.post("/ui/loyalty/grants/apply", data=form)
        after = (await client.get(f"/v1/customers/{a}/loyalty", headers=h)).json()["balance"]
        return [before, bad, preview, after_preview, first, second, after]

    before, bad, preview, after_preview, first, second, after = run_ui(ui_demo, script)
    assert bad.status_code == 422 and "bad.csv row 2" in bad.text and "bad.csv row 4" in bad.text
    assert preview.status_code == 200 and "Preview:" in preview.text and "100" in preview.text
    assert after_preview == before  # a preview applies nothing
    assert first.status_code == 200 and "2 customers granted" in first.text
    assert second.status_code == 200 and "0 customers granted" in second.text and "2 already granted" in second.text
    assert after == before + 70


def test_revoking_the_key_ends_its_sessions(ui_demo: UiDemo) -> None:
    client = redis.Redis.from_url(ui_demo.redis_url)
    try:
        key = create_api_key(client, ui_demo.keys, "read", name="short-lived")
    finally:
        client.close()

    async def script(http: httpx.AsyncClient) -> tuple[int, int]:
        await sign_in(http, key)
        before = (await http.get("/ui/models")).status_code
        sync = redis.Redis.from_url(ui_demo.redis_url)
        try:
            revoke_api_key(sync, ui_demo.keys, key.split("_")[1])
        finally:
            sync.close()
        return before, (await http.get("/ui/models")).status_code

    assert run_ui(ui_demo, script) == (200, 303)


def test_sign_out_needs_the_csrf_token_and_ends_the_session(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> list[int]:
        await sign_in(client, ui_demo.read_key)
        token = csrf_token((await client.get("/ui")).text)
        refused = (await client.post("/ui/logout", data={})).status_code
        done = (await client.post("/ui/logout", data={"csrf": token})).status_code
        return [refused, done, (await client.get("/ui")).status_code]

    assert run_ui(ui_demo, script) == [403, 303, 303]


def test_a_start_readies_every_figure_before_serving_and_a_restart_reads_them_instead_of_scanning(
    ui_demo: UiDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.app import create_app
    from serving.services import dashboard
    from serving.services.dashboard_cache import DashboardCache, cache_of

    scans: list[str] = []
    real = dashboard.loyalty_history

    async def counted(svc: Any, now: Any, months: int = 24) -> dict[str, Any]:
        scans.append("history")
        return await real(svc, now, months)

    monkeypatch.setattr(dashboard, "loyalty_history", counted)
    settings = ui_demo.settings().model_copy(update={"dashboard_warmup": True})

    async def start() -> dict[str, float]:
        app = create_app(settings, gc_tuning=False)
        async with app.router.lifespan_context(app):
            # the lifespan returned: the figures are there before any request, no polling needed
            return {name: hit.at for name, hit in cache_of(app).entries.items()}

    async def body() -> tuple[dict[str, float], dict[str, float]]:
        client = redis.asyncio.Redis.from_url(ui_demo.redis_url)
        try:
            await DashboardCache(client, ui_demo.keys).forget(dashboard.HISTORY)  # as if never computed
        finally:
            await client.aclose()
        return await start(), await start()

    first, second = asyncio.run(body())
    assert {dashboard.SUMMARY, dashboard.HISTORY} <= set(first)
    assert any(n.startswith("offers:") for n in first) and any(n.startswith("experiments:") for n in first)
    assert scans == ["history"]  # the restart scanned nothing: it read what the first start shared
    assert second[dashboard.HISTORY] == first[dashboard.HISTORY]


def test_overview_lists_the_last_pipeline_runs_from_the_pipelines_reports(
    ui_demo: UiDemo, tmp_path: Path, redis_client: redis.Redis, keys: Keys
) -> None:
    succeeded, refused, failed = write_pipeline_reports(tmp_path, redis_client, keys)
    assert failed.status == "failed" and failed.error and "missing.csv" in failed.error["message"]

    async def script(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
        api = (await client.get("/v1/dashboard/overview", headers=bearer_header(ui_demo.read_key))).json()
        await sign_in(client, ui_demo.read_key)
        return api, (await client.get("/ui")).text

    async def body() -> tuple[dict[str, Any], str]:
        async with ui_client(ui_demo, pipeline_dir=tmp_path) as client:
            return await script(client)

    api, html = asyncio.run(body())
    assert [r["run_id"] for r in api["runs"]] == [failed.run_id, refused.run_id, succeeded.run_id]  # newest first
    shown = api["runs"][0]
    assert shown["status"] == "failed" and shown["exit_code"] == failed.exit_code != 0
    assert shown["error"] == failed.error and shown["seconds"] == failed.seconds
    assert [s["name"] for s in shown["stages"]] == list(STAGES)
    assert [s["status"] for s in shown["stages"][:3]] == [s.status for s in failed.stages[:3]]
    assert shown["stages"][0] == {"name": "sync", "status": "done", "seconds": failed.stages[0].seconds}
    assert f'data-run="{failed.run_id}"' in html and f'data-run="{refused.run_id}"' in html
    assert "ndcg@10 fell 12%" in html and "guard refused" in html
    assert "missing.csv" in html  # the failed stage's message names the file
    assert "publish not_run" not in html  # stages not reached are not listed


def test_a_sign_in_posted_from_another_site_is_refused(ui_demo: UiDemo) -> None:
    async def script(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        form = {"api_key": ui_demo.read_key, "next": "/ui"}
        other = await client.post("/ui/login", data=form, headers={"Origin": "https://evil.example"})
        same = await client.post("/ui/login", data=form, headers={"Origin": "http://centric.test"})
        return other, same

    other, same = run_ui(ui_demo, script)
    assert other.status_code == 403 and "set-cookie" not in other.headers
    assert same.status_code == 303 and "centric_session" in same.headers["set-cookie"]


def test_rollback_needs_admin_and_csrf_and_activates_the_previous_snapshot(ui_demo: UiDemo) -> None:
    client = redis.Redis.from_url(ui_demo.redis_url)
    try:
        first = RedisSnapshotStore(client, ui_demo.keys).active_version()
        second = run_publish(client, ui_demo.keys, ui_demo.artifacts)["version"]  # same artifacts, a newer version
    finally:
        client.close()

    async def script(http: httpx.AsyncClient) -> list[httpx.Response]:
        await sign_in(http, ui_demo.read_key)
        token = csrf_token((await http.get("/ui/models")).text)
        out = [await http.post("/ui/snapshots/rollback", data={"csrf": token, "active": second})]
        await sign_in(http, ui_demo.admin_key)
        page = await http.get("/ui/models")
        out.append(await http.post("/ui/snapshots/rollback", data={"active": second}))
        out.append(await http.post("/ui/snapshots/rollback", data={"csrf": csrf_token(page.text), "active": second}))
        out.append(await http.get(out[-1].headers.get("location", "/ui/models")))
        return out

    read, no_csrf, done, page = run_ui(ui_demo, script)
    assert read.status_code == 403 and no_csrf.status_code == 403
    assert done.status_code == 303 and first is not None and second != first
    assert f'id="active-version">{first}<' in page.text and "Rolled back" in page.text
    client = redis.Redis.from_url(ui_demo.redis_url)
    try:
        assert RedisSnapshotStore(client, ui_demo.keys).active_version() == first
    finally:
        client.close()


def test_a_rollback_form_submitted_twice_rolls_back_once(ui_demo: UiDemo) -> None:
    client = redis.Redis.from_url(ui_demo.redis_url)
    try:
        older = run_publish(client, ui_demo.keys, ui_demo.artifacts)["version"]
        newest = run_publish(client, ui_demo.keys, ui_demo.artifacts)["version"]
    finally:
        client.close()

    async def script(http: httpx.AsyncClient) -> tuple[str, list[httpx.Response]]:
        await sign_in(http, ui_demo.admin_key)
        page = (await http.get("/ui/models")).text
        form = {"csrf": csrf_token(page), "active": newest}
        # a double click: the same form twice, the second before the page of the first is shown
        posts = [await http.post("/ui/snapshots/rollback", data=form) for _ in range(2)]
        # a link that claims a rollback which did not happen shows no such notice
        spoof = await http.get("/ui/models", params={"rolled_back": "20991231T000000-dead"})
        assert spoof.status_code == 200 and "Rolled back" not in spoof.text
        return page, posts

    try:
        page, (first, again) = run_ui(ui_demo, script)
        assert first.status_code == 303 and first.headers["location"] == f"/ui/models?rolled_back={older}"
        assert again.status_code == 409 and "no longer the active one" in again.text
        assert f'name="active" value="{newest}"' in page  # the form names the version it rolls back from
        client = redis.Redis.from_url(ui_demo.redis_url)
        try:
            assert RedisSnapshotStore(client, ui_demo.keys).active_version() == older  # not one further back
            assert client.get(ui_demo.keys.snapshot_lock()) is None  # the rollback released the publish lock
        finally:
            client.close()
    finally:
        client = redis.Redis.from_url(ui_demo.redis_url)
        try:  # the other tests expect the newest kept version to be active
            RedisSnapshotStore(client, ui_demo.keys).activate(newest)
        finally:
            client.close()
