"""``MuxRedis`` on a Redis Cluster: one multiplexed connection per master, commands routed by their key's slot."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recsys.store import scripts
from serving.hotpath.redis_mux import Command, MuxRedis

# the scripts whose writes a ledger acknowledgement may wait on replicas for (``wait_replicas``)
LEDGER_WRITES = frozenset({scripts.LEDGER.sha, scripts.STOCK.sha})


class ReplicationTimeout(RedisError):
    """A ledger write reached its primary (and its AOF) but fewer replicas than asked confirmed it in time."""


_REDIRECTS = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
_KEYLESS = {"WAIT", "PING"}


def _name(command: Command) -> str:
    head = command[0]
    return (head.decode() if isinstance(head, bytes) else str(head)).upper()


def _key_of(command: Command) -> str | bytes | None:
    """The key a command is routed by: EVALSHA's first key, else the first argument; ``None`` when keyless."""
    name = _name(command)
    if name in _KEYLESS:
        return None
    if name in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) > 0 else None  # type: ignore[return-value]
    return command[1] if len(command) > 1 else None  # type: ignore[return-value]


class ClusterMux:
    """``MuxRedis`` on a Redis Cluster: one multiplexed connection per master, each command sent to its slot's master.

    The slot map is the cluster client's (``redis.asyncio.RedisCluster``). The commands of one ``execute`` call that
    go to one master travel in one write (a loyalty step's customer-index SADD and its ledger script may be on two
    masters: two writes, sent together). A redirect (``MOVED`` after a resharding or failover) refreshes the map and
    the call is sent once more; a dropped or refused connection refreshes the map and is raised (the call may have run:
    writes are retried by the client with their idempotency key; the next call goes to the new master).

    ``wait_replicas``: after every batch that runs a script in ``durable`` (the ledger's), ``WAIT wait_replicas
    wait_timeout_ms`` goes on the same connection; fewer confirmations raise ``ReplicationTimeout`` (503: the write is
    on the primary; a retry with the same key replays it and waits again). Only then is a ledger write acknowledged,
    which is what lets it survive a failover (Redis replication is otherwise asynchronous).
    """

    REFRESH_EVERY_S = 0.2

    def __init__(
        self,
        cluster: aioredis.RedisCluster,
        *,
        username: str | None = None,
        password: str | None = None,
        socket_timeout: float | None = 2.0,
        socket_connect_timeout: float | None = 1.0,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
        durable: frozenset[str] = LEDGER_WRITES,
    ) -> None:
        self.cluster = cluster
        self.username, self.password = username, password
        self.socket_timeout, self.socket_connect_timeout = socket_timeout, socket_connect_timeout
        self.wait_replicas, self.wait_timeout_ms, self.durable = wait_replicas, wait_timeout_ms, durable
        self._muxes: dict[str, MuxRedis] = {}
        self._ready = False
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = float("-inf")

    @classmethod
    def for_cluster(cls, client: aioredis.RedisCluster, **options: Any) -> ClusterMux | None:
        """Return a ``ClusterMux`` for ``client``'s nodes, or ``None`` for settings ``MuxRedis`` does not handle."""
        kw = client.get_connection_kwargs()
        connection_class = kw.get("connection_class", Connection)
        if connection_class is not Connection or kw.get("credential_provider") is not None or kw.get("ssl"):
            return None
        if kw.get("decode_responses") or kw.get("protocol") not in (None, 2, "2"):
            return None
        return cls(
            client,
            username=kw.get("username"),
            password=kw.get("password"),
            socket_timeout=kw.get("socket_timeout"),
            socket_connect_timeout=kw.get("socket_connect_timeout"),
            **options,
        )

    def _mux(self, node: Any) -> MuxRedis:
        mux = self._muxes.get(node.name)
        if mux is None:
            mux = self._muxes[node.name] = MuxRedis(
                host=node.host,
                port=node.port,
                username=self.username,
                password=self.password,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_connect_timeout,
            )
        return mux

    def _route(self, commands: tuple[Command, ...]) -> dict[str, tuple[MuxRedis, list[int]]]:
        groups: dict[str, tuple[MuxRedis, list[int]]] = {}
        node = None
        for index, command in enumerate(commands):
            key = _key_of(command)
            if key is not None:
                node = self.cluster.get_node_from_key(key)
            elif node is None:
                node = self.cluster.get_primaries()[0]
            groups.setdefault(node.name, (self._mux(node), []))[1].append(index)
        return groups

    async def execute(self, *commands: Command) -> list[Any]:
        """Send ``commands`` to their masters and return their replies in order; an error reply is raised."""
        if not self._ready:
            await self.cluster.initialize()
            self._ready = True
        try:
            return await self._execute(commands)
        except ResponseError as exc:
            if not str(exc).startswith(_REDIRECTS):
                raise
            await self._refresh_map(force=True)
        return await self._execute(commands)

    async def _execute(self, commands: tuple[Command, ...]) -> list[Any]:
        groups = list(self._route(commands).items())
        sent = []
        for _, (mux, indices) in groups:
            batch = [commands[i] for i in indices]
            waits = self.wait_replicas > 0 and any(
                _name(c) == "EVALSHA" and (c[1].decode() if isinstance(c[1], bytes) else c[1]) in self.durable
                for c in batch
            )
            if waits:
                batch.append(("WAIT", self.wait_replicas, self.wait_timeout_ms))
            sent.append((mux, indices, waits, batch))
        answers = await asyncio.gather(*(mux.execute(*batch) for mux, _, _, batch in sent), return_exceptions=True)
        replies: list[Any] = [None] * len(commands)
        failure: BaseException | None = None
        for (name, _), (_mux, indices, waits, _batch), answer in zip(groups, sent, answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, (RedisConnectionError, RedisTimeoutError)):
                    self._muxes.pop(name, None)
                    await _mux.aclose()
                    await self._refresh_map()
                failure = failure or answer
                continue
            if waits:
                confirmed = int(answer.pop())
                if confirmed < self.wait_replicas:
                    failure = failure or ReplicationTimeout(
                        f"the write is on the primary but {confirmed} of {self.wait_replicas} replica(s) confirmed it "
                        f"within {self.wait_timeout_ms} ms; retry with the same Idempotency-Key"
                    )
            for index, reply in zip(indices, answer, strict=True):
                replies[index] = reply
        if failure is not None:
            raise failure
        return replies

    async def _refresh_map(self, *, force: bool = False) -> None:
        """Reload the slot map from the cluster, at most every ``REFRESH_EVERY_S`` (one reload shared by callers)."""
        loop = asyncio.get_running_loop()
        if self._refresh is None:
            if not force and loop.time() - self._refreshed_at < self.REFRESH_EVERY_S:
                return
            self._refreshed_at = loop.time()
            self._refresh = asyncio.ensure_future(self.cluster.nodes_manager.initialize())
            self._refresh.add_done_callback(lambda task: task.cancelled() or task.exception())
        refresh = self._refresh
        try:
            await asyncio.shield(refresh)
        except (RedisError, OSError):
            pass  # no node answered yet (a failover in progress): the next call tries again
        finally:
            if self._refresh is refresh and refresh.done():
                self._refresh = None

    async def aclose(self) -> None:
        """Close every node's connection."""
        for mux in list(self._muxes.values()):
            await mux.aclose()
        self._muxes.clear()
