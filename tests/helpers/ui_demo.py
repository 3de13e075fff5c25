"""The dashboard tests' service: ``centric demo`` on 120 customers of The Complete Journey, published to real Redis.

Built once per test process (about 8 s) in a namespace of its own; the UI tests share it (they are one xdist
group, so one worker builds it) and only add to it (grants, sessions), never reset it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import redis

from recsys.settings import Settings
from recsys.store.keys import Keys
from serving.app import create_app
from serving.auth import create_api_key
from training.jobs.demo import run_demo
from training.pipeline.config import PipelineConfig
from training.pipeline.runner import run_pipeline
from training.pipeline.state import STAGES, RunReport, StageReport

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "examples" / "loyalty.toml"
OFFERS = ROOT / "examples" / "offers.toml"


@dataclass(frozen=True)
class UiDemo:
    """Where the demo lives and the keys to sign in with."""

    redis_url: str
    keys: Keys
    artifacts: Path
    admin_key: str
    read_key: str
    customer_id: str  # a customer with recommendations and offers on the app channel

    def settings(self) -> Settings:
        """Settings of a service on this demo."""
        return Settings(redis_url=self.redis_url, env=self.keys.env, loyalty_program=PROGRAM)


def build_ui_demo(redis_url: str, directory: Path) -> UiDemo:
    """Run the demo on 120 customers into a new namespace; return how to reach it."""
    keys = Keys(env=f"ui{uuid.uuid4().hex[:10]}")
    client = redis.Redis.from_url(redis_url)
    try:
        result = run_demo(client, keys, directory, loyalty_program=PROGRAM, offers_catalog=OFFERS, customers=120)
        read_key = create_api_key(client, keys, "read", name="ui-test-read")
    finally:
        client.close()
    decisions = pl.read_parquet(directory / "decisions.parquet").filter(pl.col("channel") == "app")
    customer = str(decisions.get_column("customer_id").sort().to_list()[0])
    assert result.api_key is not None
    return UiDemo(redis_url, keys, directory, result.api_key, read_key, customer)


def drop_ui_demo(demo: UiDemo) -> None:
    """Delete every key of the demo's namespace."""
    client = redis.Redis.from_url(demo.redis_url)
    try:
        batch = list(client.scan_iter(match=demo.keys.pattern(), count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    finally:
        client.close()


@contextlib.asynccontextmanager
async def ui_client(
    demo: UiDemo, base_url: str = "http://centric.test", **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an httpx client on a fresh app over the demo (lifespan running; redirects not followed); ``settings``
    override the demo's."""
    app = create_app(demo.settings().model_copy(update=settings), gc_tuning=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url) as client:
            yield client


async def sign_in(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    """Post the sign-in form; the client keeps the session cookie."""
    return await client.post("/ui/login", data={"api_key": api_key, "next": "/ui"})


def _saved_run(work: Path, run_id: str, status: str, exit_code: int, done: int, error: str | None) -> RunReport:
    """A run report saved by the pipeline's ``RunReport.save``: ``done`` stages done, then ``status`` (refused: the
    next stage refused with ``error``), the rest not run."""
    report = RunReport(
        run_id=run_id,
        started_at=f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:{run_id[13:15]}+00:00",
        work_dir=str(work),
        config={},
        stages=[StageReport(name) for name in STAGES],
    )
    for stage in report.stages[:done]:
        stage.status, stage.seconds = "done", 12.5
    for stage in report.stages[done:]:
        stage.status = "not_run"
    if error is not None:
        report.stages[done].status, report.stages[done].message = status, error
        report.error = {"stage": report.stages[done].name, "message": error}
    report.status, report.exit_code, report.seconds = status, exit_code, 12.5 * done + 1.25
    report.save(work)
    return report


def write_pipeline_reports(work: Path, client: redis.Redis, keys: Keys) -> tuple[RunReport, RunReport, RunReport]:
    """Three run reports under ``work/runs``, written by the pipeline's own code: a succeeded and a refused run
    (``RunReport.save``), then a real ``run_pipeline`` that fails because its transactions file is missing."""
    succeeded = _saved_run(work, "20261130T021500Z-1b2c3d", "succeeded", 0, len(STAGES), None)
    refused = _saved_run(work, "20261201T021503Z-3f9a1c", "refused", 3, 3, "ndcg@10 fell 12% (tolerance 10%)")
    config = PipelineConfig(transactions=str(work / "missing.csv"), work_dir=str(work), events_dir=str(work / "ev"))
    failed = run_pipeline(config, client, keys, work)
    return succeeded, refused, failed


def run_ui(
    demo: UiDemo, script: Callable[[httpx.AsyncClient], Awaitable[Any]], base_url: str = "http://centric.test"
) -> Any:
    """Run ``script`` with an httpx client on the demo's app (lifespan running); return what it returns."""

    async def body() -> Any:
        async with ui_client(demo, base_url) as client:
            return await script(client)

    return asyncio.run(body())


def csrf_token(html: str) -> str:
    """Return the CSRF token of the first form on ``html`` (asserts there is one)."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def bearer_header(key: str) -> dict[str, str]:
    """Return the Authorization header for an API key."""
    return {"Authorization": f"Bearer {key}"}
