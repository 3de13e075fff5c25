"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the demo.

Skipped when Chromium or Playwright is missing (`.ci/run` installs Chromium when it runs as root). Screenshots of
every page at desktop and phone width are written to ``artifacts/ui-screenshots/`` (or ``CENTRIC_UI_SCREENSHOTS``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from recsys.store.keys import Keys
from tests.helpers.http import ROOT, uvicorn_server
from tests.helpers.ui_demo import PROGRAM, UiDemo, write_pipeline_reports
from training.jobs.campaign import run_select

pytestmark = pytest.mark.xdist_group("ui")
CHROMIUM = os.environ.get("CENTRIC_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("CENTRIC_UI_SCREENSHOTS", ROOT / "artifacts" / "ui-screenshots"))
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium, or a skip saying what is missing."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CENTRIC_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(ui_demo: UiDemo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service as `centric serve` runs it, on the demo's namespace; yields its base URL."""
    work = tmp_path_factory.mktemp("pipeline")
    client, keys = redis.Redis.from_url(ui_demo.redis_url), Keys(f"pl{uuid.uuid4().hex[:10]}")
    try:
        write_pipeline_reports(work, client, keys)  # so that the overview shows runs as the pipeline reports them
    finally:
        for key in client.scan_iter(match=keys.pattern()):
            client.delete(key)
        client.close()
    env = {"CENTRIC_LOYALTY_PROGRAM": str(PROGRAM), "CENTRIC_PIPELINE_DIR": str(work)}
    with uvicorn_server(ui_demo.redis_url, ui_demo.keys, **env) as base:
        yield base


class Tab:
    """A signed-in page that records console errors and uncaught page errors."""

    def __init__(self, browser: Any, base: str, api_key: str, viewport: str = "desktop") -> None:
        width, height = VIEWPORTS[viewport]
        self.context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(f"{base}/ui/login")
        self.page.fill("#api_key", api_key)
        self.page.click("form.stack button[type=submit]")
        self.page.wait_for_url(f"{base}/ui")

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def csrf(self) -> str:
        return str(self.page.locator("input[name=csrf]").first.get_attribute("value"))

    def close(self) -> None:
        self.context.close()


@contextlib.contextmanager
def signed_in(browser: Any, base: str, api_key: str, viewport: str = "desktop") -> Iterator[Tab]:
    """A signed-in tab, closed afterwards."""
    tab = Tab(browser, base, api_key, viewport)
    try:
        yield tab
    finally:
        tab.close()


def _api(base: str, key: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _pages(demo: UiDemo) -> dict[str, str]:
    return {
        "overview": "/ui",
        "customer": f"/ui/customers?id={demo.customer_id}",
        "models": "/ui/models",
        "campaigns": "/ui/campaigns?offer=snacks_crosssell&budget=5",
        "loyalty": "/ui/loyalty",
    }


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_loads_without_console_errors_and_fits_the_width(
    browser: Any, server: str, ui_demo: UiDemo, viewport: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with signed_in(browser, server, ui_demo.admin_key, viewport) as tab:
        for name, path in _pages(ui_demo).items():
            tab.open(path)
            tab.page.screenshot(path=str(SHOTS / f"{name}-{viewport}.png"), full_page=True)
            assert tab.page.locator("h1").count() == 1
            overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow}px wider than the {viewport} viewport"
        assert tab.errors == []


def test_keyboard_reaches_the_skip_link_and_the_navigation(browser: Any, server: str, ui_demo: UiDemo) -> None:
    with signed_in(browser, server, ui_demo.read_key) as tab:
        tab.open("/ui")
        tab.page.keyboard.press("Tab")
        assert tab.page.evaluate("document.activeElement.textContent") == "Skip to content"
        for _ in range(3):
            tab.page.keyboard.press("Tab")
        assert tab.page.evaluate("document.activeElement.getAttribute('href')") == "/ui/customers"
        tab.page.keyboard.press("Enter")
        tab.page.wait_for_url(f"{server}/ui/customers")
        assert tab.page.get_by_label("Customer id").is_visible()


def test_customer_search_finds_a_real_customer_with_recommendations_and_offers(
    browser: Any, server: str, ui_demo: UiDemo
) -> None:
    cid = ui_demo.customer_id
    recs = _api(server, ui_demo.read_key, f"/v1/customers/{cid}/recommendations", k=10)
    offers = _api(server, ui_demo.read_key, f"/v1/customers/{cid}/offers", channel="app", k=5)
    with signed_in(browser, server, ui_demo.read_key) as tab:
        tab.open("/ui")
        tab.page.get_by_role("link", name="Customer 360").click()
        tab.page.get_by_label("Customer id").fill(cid)
        tab.page.get_by_label("Customer id").press("Enter")
        tab.page.wait_for_selector("#customer-id")
        assert tab.page.inner_text("#customer-id") == f"Customer {cid}"
        shown = tab.page.locator("#recommendations tbody tr").evaluate_all("rows => rows.map(r => r.dataset.item)")
        assert shown == [item["item_id"] for item in recs["items"]]
        offered = set(tab.page.locator("#offers tbody tr").evaluate_all("rows => rows.map(r => r.dataset.offer)"))
        assert {o["offer_id"] for o in offers["offers"]} <= offered and offered
        assert tab.page.locator("#statement tbody tr").count() > 0
        assert tab.page.locator("#chart-timeline svg .mark").count() > 0
        assert tab.errors == []


def test_charts_draw_the_numbers_the_api_gives(browser: Any, server: str, ui_demo: UiDemo) -> None:
    api = _api(server, ui_demo.read_key, "/v1/dashboard/overview")
    doc, loyalty = api["snapshot"]["dashboard"], api["loyalty"]
    with signed_in(browser, server, ui_demo.read_key) as tab:
        tab.open("/ui")

        def marks(chart: str) -> list[tuple[str, float]]:
            pairs = tab.page.locator(f"#{chart} .mark").evaluate_all(
                "ms => ms.map(m => [m.dataset.label, m.dataset.value])"
            )
            return [(label, float(value.replace(",", ""))) for label, value in pairs]

        lifecycle = [value for _, value in marks("chart-lifecycle")]
        assert lifecycle == [float(s["customers"]) for s in doc["lifecycle"]]
        rfm = [value for _, value in marks("chart-rfm")]
        assert rfm == [float(c["customers"]) for c in doc["rfm"]]  # rows R5..R1, columns F1..F5, as the API
        assert [value for _, value in marks("chart-clv")] == [float(b["customers"]) for b in doc["clv_histogram"]]
        assert [value for _, value in marks("chart-tiers")] == [float(t["members"]) for t in loyalty["tiers"]]
        customers = tab.page.locator("#kpi-customers .v").inner_text()
        assert customers == f"{doc['customers']:,}"
        assert tab.page.locator("#kpi-liability .v").inner_text() == f"{loyalty['liability_points']:,} pts"


def test_a_read_key_cannot_export_an_audience_or_grant_points(browser: Any, server: str, ui_demo: UiDemo) -> None:
    with signed_in(browser, server, ui_demo.read_key) as tab:
        tab.open("/ui/campaigns?offer=snacks_crosssell&budget=5")
        assert tab.page.locator("#download-csv").is_disabled()
        token = tab.csrf()
        export = tab.page.request.post(
            f"{server}/ui/campaigns/audience.csv", form={"offer": "snacks_crosssell", "budget": "5", "csrf": token}
        )
        assert export.status == 403 and "admin API key" in export.text()
        tab.open("/ui/loyalty")
        assert tab.page.locator("#grant-file").count() == 0
        grant = tab.page.request.post(
            f"{server}/ui/loyalty/grants/apply",
            form={"text": f"customer_id,points\n{ui_demo.customer_id},5\n", "reason": "x", "csrf": token},
        )
        assert grant.status == 403


def test_a_post_without_the_csrf_token_is_refused(browser: Any, server: str, ui_demo: UiDemo) -> None:
    with signed_in(browser, server, ui_demo.admin_key) as tab:
        tab.open("/ui/campaigns")
        refused = tab.page.request.post(
            f"{server}/ui/campaigns/audience.csv", form={"offer": "snacks_crosssell", "budget": "5"}
        )
        assert refused.status == 403 and "CSRF" in refused.text()
        assert refused.headers["content-type"].startswith("text/html")


def test_the_downloaded_audience_csv_matches_centric_campaign_select(
    browser: Any, server: str, ui_demo: UiDemo, tmp_path: Path
) -> None:
    with signed_in(browser, server, ui_demo.admin_key) as tab:
        tab.open("/ui/campaigns")
        tab.page.select_option("#offer", "snacks_crosssell")
        tab.page.fill("#budget", "4")
        tab.page.get_by_role("button", name="Preview").click()
        tab.page.wait_for_selector("#audience-summary")
        with tab.page.expect_download() as download:
            tab.page.click("#download-csv")
        got = tmp_path / "ui.csv"
        download.value.save_as(str(got))
        run_select(ui_demo.artifacts, "snacks_crosssell", 4, tmp_path / "cli.csv")
        assert got.read_bytes() == (tmp_path / "cli.csv").read_bytes()
        shown = int(str(tab.page.locator("#audience-summary strong").first.get_attribute("data-value")))
        assert shown == len(got.read_text().splitlines()) - 1
        assert tab.errors == []


def test_loyalty_charts_draw_the_months_and_tier_movements_the_api_gives(
    browser: Any, server: str, ui_demo: UiDemo
) -> None:
    api = _api(server, ui_demo.read_key, "/v1/dashboard/loyalty")
    with signed_in(browser, server, ui_demo.read_key) as tab:
        tab.open("/ui/loyalty")

        def dots(chart: str, series: str) -> list[tuple[str, float]]:
            pairs = tab.page.locator(f"#{chart} circle.dot").evaluate_all(
                "ms => ms.map(m => [m.dataset.label, m.dataset.value])"
            )
            return [(label.removeprefix(series + " "), float(v)) for label, v in pairs if label.startswith(series)]

        months = [m["month"] for m in api["months"]]
        liability = [(m["month"], float(m["liability_points"])) for m in api["months"]]
        assert dots("chart-liability", "Liability (points)") == liability
        moved = {m["month"]: m for m in api["tier_movements"]}
        ups = [(month, float(moved.get(month, {}).get("upgrades", 0))) for month in months]
        assert dots("chart-movements", "Upgrades") == ups and any(v for _, v in ups)
        assert tab.errors == []
