"""Redis goes away while serving: reads degrade to the cached fallback list, writes fail loudly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis

from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys
from tests.helpers.http import app_client, bearer, write_artifacts
from training.jobs.publish import run_publish


def test_reads_degrade_and_writes_fail_when_redis_is_down(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "home", appendfsync="no")
    url = server.start()
    keys = Keys("degraded")
    try:
        client = redis.Redis.from_url(url)
        run_publish(client, keys, write_artifacts(tmp_path / "art"))
        client.close()
        headers = bearer(url, keys, "admin")

        async def body() -> dict[str, Any]:
            async with app_client(url, keys) as http:
                healthy = await http.get("/v1/customers/c1/recommendations", params={"k": 2}, headers=headers)
                await asyncio.to_thread(server.stop)
                return {
                    "healthy": healthy,
                    "recs": await http.get("/v1/customers/c1/recommendations", params={"k": 2}, headers=headers),
                    "events": await http.post(
                        "/v1/events",
                        headers=headers,
                        json={"events": [{"type": "purchase", "customer_id": "c1", "item_id": "tea"}]},
                    ),
                    "profile": await http.get("/v1/customers/c1/profile", headers=headers),
                    "readyz": await http.get("/readyz"),
                    "healthz": await http.get("/healthz"),
                }

        r = asyncio.run(body())
    finally:
        server.stop()
    assert r["healthy"].json()["degraded"] is False
    recs = r["recs"].json()
    assert r["recs"].status_code == 200 and recs["degraded"] is True
    assert [i["item_id"] for i in recs["items"]] == ["coffee", "bread"]
    assert all(i["source"] == "fallback" and "unavailable" in i["reason"] for i in recs["items"])
    assert r["events"].status_code == 503 and r["events"].json()["code"] == "store_unavailable"
    assert "retry" in r["events"].json()["detail"]
    assert r["profile"].status_code == 503
    assert r["readyz"].status_code == 503 and r["healthz"].status_code == 200
