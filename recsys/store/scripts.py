"""Every Lua script Centric runs is a ``.lua`` file in ``recsys/store/lua/``, loaded and sent through here.

A script is sent by its sha1 (``EVALSHA``), so its body crosses the network once per server, not once per call.
A server that does not know it (restarted, flushed, a new replica) answers ``NOSCRIPT``; the script then did not
run, so this module loads it (``SCRIPT LOAD``) and sends that command once more. Callers never handle NOSCRIPT:
``run``/``arun`` for one call, ``run_batch``/``arun_batch`` for several commands in one round trip (a pipeline,
not a transaction), ``aexecute`` for any other async sender (the service's multiplexed connection).

Why not redis-py's ``register_script``: in a pipeline it first asks ``SCRIPT EXISTS`` (a second round trip per
call), and it cannot serve a sender that is not a redis-py client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

Command = tuple[Any, ...]


@dataclass(frozen=True)
class LuaScript:
    """One script: its file name (without ``.lua``), its source and the sha1 Redis knows it by."""

    name: str
    source: str
    sha: str

    def command(self, keys: Sequence[Any], args: Sequence[Any] = ()) -> Command:
        """Return the ``EVALSHA`` command calling this script on ``keys`` with ``args``."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


def _load(name: str) -> LuaScript:
    source = resources.files("recsys.store").joinpath(f"lua/{name}.lua").read_text()
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


# loyalty (see recsys/loyalty/flow.py): one customer's ledger step; a reward's stock reservation
LEDGER = _load("ledger")
STOCK = _load("stock")
# snapshot publish (recsys/store/redis_store.py, writer.py)
VERIFY_BUCKET = _load("verify_bucket")
ACTIVATE_VERSION = _load("activate_version")
RELEASE_LOCK = _load("release_lock")
REFRESH_LOCK = _load("refresh_lock")
# serving reads and counters (recsys/store/redis_reader.py, serving/services/offer_events.py)
READ_RECS = _load("read_recs")
HASH_UPDATE = _load("hash_update")
# per-key request rate limit (serving/ratelimit.py)
RATE_LIMIT = _load("rate_limit")

BY_SHA = {
    s.sha: s
    for s in (
        LEDGER,
        STOCK,
        VERIFY_BUCKET,
        ACTIVATE_VERSION,
        RELEASE_LOCK,
        REFRESH_LOCK,
        READ_RECS,
        HASH_UPDATE,
        RATE_LIMIT,
    )
}


def is_noscript(error: BaseException) -> bool:
    """Return whether ``error`` is Redis's NOSCRIPT reply (redis-py's ``NoScriptError``, or a raw error reply)."""
    return isinstance(error, NoScriptError) or (isinstance(error, ResponseError) and str(error).startswith("NOSCRIPT"))


def scripts_in(commands: Sequence[Command]) -> list[LuaScript]:
    """Return the registered scripts ``commands`` call by sha1, each once."""
    found = {c[1]: BY_SHA[c[1]] for c in commands if c and c[0] == "EVALSHA" and c[1] in BY_SHA}
    return list(found.values())


def run(client: redis.Redis, script: LuaScript, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
    """Run ``script`` on a sync client; return its answer (loading it first if the server does not know it)."""
    try:
        return client.execute_command(*script.command(keys, args))
    except ResponseError as exc:
        if not is_noscript(exc):
            raise
    client.script_load(script.source)
    return client.execute_command(*script.command(keys, args))


async def arun(client: aioredis.Redis, script: LuaScript, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
    """Run ``script`` on an async client; return its answer (loading it first if the server does not know it)."""
    try:
        return await client.execute_command(*script.command(keys, args))
    except ResponseError as exc:
        if not is_noscript(exc):
            raise
    await client.script_load(script.source)
    return await client.execute_command(*script.command(keys, args))


def _retry_indices(commands: Sequence[Command], replies: Sequence[Any]) -> list[int]:
    return [i for i, r in enumerate(replies) if isinstance(r, Exception) and is_noscript(r) and i < len(commands)]


def _first_error(replies: Sequence[Any], raise_on_error: bool) -> list[Any]:
    if raise_on_error:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    return list(replies)


def run_batch(client: redis.Redis, commands: Sequence[Command], *, raise_on_error: bool = True) -> list[Any]:
    """Send ``commands`` in one round trip (a pipeline, not a transaction) on a sync client; return the replies.

    The scripts the server did not know are loaded and their commands (only those: nothing ran for them) sent
    again. With ``raise_on_error`` the first error reply is raised, else error replies are returned in place.
    """
    replies = _pipeline(client, commands)
    retry = _retry_indices(commands, replies)
    if retry:
        for script in scripts_in([commands[i] for i in retry]):
            client.script_load(script.source)
        for i, reply in zip(retry, _pipeline(client, [commands[i] for i in retry]), strict=True):
            replies[i] = reply
    return _first_error(replies, raise_on_error)


def _pipeline(client: redis.Redis, commands: Sequence[Command]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute(raise_on_error=False)


async def arun_batch(client: aioredis.Redis, commands: Sequence[Command], *, raise_on_error: bool = True) -> list[Any]:
    """``run_batch`` on an async client."""
    replies = await _apipeline(client, commands)
    retry = _retry_indices(commands, replies)
    if retry:
        for script in scripts_in([commands[i] for i in retry]):
            await client.script_load(script.source)
        for i, reply in zip(retry, await _apipeline(client, [commands[i] for i in retry]), strict=True):
            replies[i] = reply
    return _first_error(replies, raise_on_error)


async def _apipeline(client: aioredis.Redis, commands: Sequence[Command]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute(raise_on_error=False))


async def aexecute(
    execute: Callable[..., Awaitable[list[Any]]], loader: aioredis.Redis, commands: Sequence[Command]
) -> list[Any]:
    """Send ``commands`` with ``execute`` (e.g. ``MuxRedis.execute``, which raises the first error reply).

    On NOSCRIPT the batch's scripts are loaded through ``loader`` and the whole batch is sent once more, so the
    other commands of such a batch must be safe to repeat (reads, ``SADD``): the loyalty flow's batches are.
    """
    try:
        return await execute(*commands)
    except ResponseError as exc:
        if not is_noscript(exc):
            raise
    for script in scripts_in(commands):
        await loader.script_load(script.source)
    return await execute(*commands)
