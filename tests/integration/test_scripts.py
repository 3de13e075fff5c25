"""The Lua script loader: every script is a ``.lua`` file, sent by sha1, and NOSCRIPT is handled once for everyone."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import redis
import redis.asyncio as aioredis

from recsys.store import scripts
from recsys.store.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
LUA_DIR = ROOT / "recsys" / "store" / "lua"


def test_every_lua_file_is_registered_with_the_loader() -> None:
    files = {p.stem for p in LUA_DIR.glob("*.lua")}
    assert files == {s.name for s in scripts.BY_SHA.values()}


def test_no_python_module_carries_lua() -> None:
    """Lua lives in ``recsys/store/lua/`` only: no ``redis.call(`` in a Python string, no EVAL of a script body."""
    offenders = []
    for folder in ("recsys", "serving", "training"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if "redis.call(" in text or re.search(r"(pipe|client|redis)\.eval\(|register_script\(", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_a_script_runs_after_the_server_forgot_it(redis_client: redis.Redis, keys: Keys) -> None:
    key = keys.nba_budget("o1")
    redis_client.script_flush()
    assert scripts.run(redis_client, scripts.HASH_UPDATE, [key], ["incr", "redemptions", 2]) == 1
    assert redis_client.hget(key, "redemptions") == b"2"


def test_a_batch_resends_only_the_scripts_the_server_did_not_know(redis_client: redis.Redis, keys: Keys) -> None:
    counter, key = f"{keys.ns}:counter", keys.nba_budget("o1")
    redis_client.script_flush()
    replies = scripts.run_batch(
        redis_client, [("INCR", counter), scripts.HASH_UPDATE.command([key], ["max", "seen", 5])]
    )
    assert replies == [1, 1]
    assert redis_client.get(counter) == b"1"  # the INCR ran once, not again with the script
    assert redis_client.hget(key, "seen") == b"5"


def test_the_async_loader_and_a_custom_sender_reload_too(redis_url: str, keys: Keys) -> None:
    key = keys.nba_budget("o1")

    async def body() -> tuple[object, object, int]:
        client = aioredis.from_url(redis_url)
        sent = 0

        async def execute(*commands: tuple[object, ...]) -> list[object]:
            nonlocal sent
            sent += 1
            return [await client.execute_command(*c) for c in commands]  # an error reply is raised

        try:
            await client.script_flush()
            one = await scripts.arun(client, scripts.HASH_UPDATE, [key], ["incr", "n", 1])
            await client.script_flush()
            two = await scripts.aexecute(execute, client, [scripts.HASH_UPDATE.command([key], ["incr", "n", 1])])
            return one, two, sent
        finally:
            await client.aclose()

    assert asyncio.run(body()) == (1, [1], 2)
    assert redis.Redis.from_url(redis_url).hget(key, "n") == b"2"
