"""The dashboard's aggregate endpoints on a snapshot published without the optional parts (no experiments)."""

from __future__ import annotations

import asyncio

from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from tests.helpers.http import app_client, bearer, write_artifacts
from training.jobs.publish import run_publish


def test_overview_of_a_snapshot_without_experiments_lists_none_instead_of_failing(
    tmp_path, redis_url: str, keys: Keys
) -> None:
    client = sync_client(redis_url)
    try:
        run_publish(client, keys, write_artifacts(tmp_path / "artifacts"))
    finally:
        client.close()
    admin = bearer(redis_url, keys, "admin")

    async def body():
        async with app_client(redis_url, keys) as http:
            return await http.get("/v1/dashboard/overview", headers=admin)

    answer = asyncio.run(body())
    assert answer.status_code == 200, answer.text
    assert answer.json()["snapshot"]["experiments"] == []
