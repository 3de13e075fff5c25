"""A lean, multiplexed Redis connection for the hot reads (recommendations, profile, similar) and loyalty ledger steps.

Through ``redis.asyncio`` a one-command read cost more CPU in the client than in the rest of the request: a
pool checkout and release under a lock, a retry wrapper, observability hooks and an ``asyncio.wait_for`` (a new
task, on Python 3.11) around every socket write. ``MuxRedis`` keeps one connection per process: a request
writes its commands and awaits one future; replies arrive in order and are handed out first in, first out.
Commands of requests made in the same event-loop turn go out in one write, and Redis answers them in one read,
which also cuts Redis's per-command system calls. A request still costs one round trip. Loyalty writes
(``serving.services.loyalty.step``: EVALSHA, with the customer index's SADD when due) go through it too: under
``appendfsync always`` the concurrent steps of a worker then arrive in one read and are acknowledged after one fsync.

Errors are ``redis.exceptions`` ones, as from redis-py: ``ConnectionError`` when the connection fails or
drops (every pending request gets it; the next request reconnects), ``TimeoutError`` when a reply takes longer
than ``socket_timeout`` (the connection is then dropped, since replies can no longer be matched),
``ResponseError`` for an error reply. Replies are RESP2 and undecoded (bytes), as redis-py's with
``decode_responses=False``. ``MuxRedis.for_client`` returns ``None`` for connection settings it does not
handle (TLS, credential providers, RESP3, decoded responses): callers then use the redis-py client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[str | bytes | int | float, ...]


class _Group:
    """The replies one call waits for."""

    __slots__ = ("deadline", "future", "n", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], n: int, deadline: float) -> None:
        self.future = future
        self.n = n
        self.deadline = deadline
        self.replies: list[Any] = []


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: MuxRedis) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[_Group] = deque()
        self.out: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not pending:  # a reply nobody asked for: the stream is out of step
                self.fail(RedisConnectionError("unexpected reply from Redis"))
                return
            group = pending[0]
            group.replies.append(reply)
            if len(group.replies) == group.n:
                pending.popleft()
                if not group.future.done():
                    group.future.set_result(group.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def flush(self) -> None:
        if self.out and self.transport is not None and not self.closed:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            self.transport.write(data)

    def fail(self, exc: Exception) -> None:
        """Close the connection and hand ``exc`` to every pending call."""
        self.closed = True
        if self.owner._proto is self:
            self.owner._proto = None
        if self.transport is not None:
            self.transport.abort()
        while self.pending:
            group = self.pending.popleft()
            if not group.future.done():
                group.future.set_exception(exc)


class MuxRedis:
    """One multiplexed connection (per process and event loop) for short commands (reads, ledger scripts)."""

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        socket_timeout: float | None = 2.0,
        socket_connect_timeout: float | None = 1.0,
    ) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password = username, password
        self.socket_timeout = socket_timeout
        self.socket_connect_timeout = socket_connect_timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def for_client(cls, client: aioredis.Redis | aioredis.RedisCluster) -> Any:
        """Return a ``MuxRedis`` with ``client``'s connection settings, or ``None`` if they are not plain TCP/unix
        ones. A cluster client gets a ``ClusterMux`` (one ``MuxRedis`` per master, routed by slot)."""
        if isinstance(client, aioredis.RedisCluster):
            from serving.hotpath.redis_cluster_mux import ClusterMux

            return ClusterMux.for_cluster(client)
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            return None
        kw = pool.connection_kwargs
        # the class redis-py would connect with, under the hiredis packing mixin of serving.redis_client
        base = next(c for c in pool.connection_class.__mro__ if not c.__name__.startswith("HiredisPacking"))
        if base not in (Connection, UnixDomainSocketConnection) or kw.get("credential_provider") is not None:
            return None
        if kw.get("decode_responses") or kw.get("protocol") not in (None, 2, "2"):
            return None
        return cls(
            host=kw.get("host", "localhost"),
            port=int(kw.get("port", 6379)),
            path=kw.get("path") if base is UnixDomainSocketConnection else None,
            db=int(kw.get("db", 0) or 0),
            username=kw.get("username"),
            password=kw.get("password"),
            socket_timeout=kw.get("socket_timeout"),
            socket_connect_timeout=kw.get("socket_connect_timeout"),
        )

    async def execute(self, *commands: Command) -> list[Any]:
        """Send ``commands`` in one write and return their replies; an error reply is raised (``ResponseError``)."""
        proto = self._proto
        if proto is None or proto.closed:
            proto = await self._connect()
        replies = await self._send(proto, commands)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    def _send(self, proto: _Protocol, commands: tuple[Command, ...]) -> asyncio.Future[list[Any]]:
        # packed before anything is queued: an argument hiredis refuses (a lone surrogate) leaves the stream in step
        # (hiredis's stub types the command as a 1-tuple; it packs a tuple of any length)
        packed = [hiredis.pack_command(command) for command in commands]  # type: ignore[arg-type]
        if proto.closed:
            # it dropped between connecting and this call: queued here, the commands would never be sent or failed
            raise RedisConnectionError("connection to Redis lost; retry")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        timeout = self.socket_timeout
        group = _Group(future, len(commands), loop.time() + timeout if timeout else 0.0)
        if not proto.out:
            loop.call_soon(proto.flush)  # commands of this loop turn go out in one write
        proto.out.extend(packed)
        proto.pending.append(group)
        if timeout and self._timer is None:
            self._timer = loop.call_later(timeout, self._check_timeouts)
        return future

    def _check_timeouts(self) -> None:
        self._timer = None
        proto = self._proto
        if proto is None or not proto.pending:
            return
        loop = asyncio.get_running_loop()
        head = proto.pending[0]
        if head.deadline <= loop.time():
            proto.fail(RedisTimeoutError("timeout reading from Redis"))
        else:
            self._timer = loop.call_later(head.deadline - loop.time(), self._check_timeouts)

    async def _connect(self) -> _Protocol:
        # One connect task shared by every caller; each awaits it shielded, so a cancelled caller is cancelled
        # alone (it sees CancelledError) and the connect goes on for the others.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect_once())
            self._connecting.add_done_callback(lambda task: task.cancelled() or task.exception())  # always retrieved
        return await asyncio.shield(self._connecting)

    async def _connect_once(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(self._open(loop), self.socket_connect_timeout)
        except Exception as exc:
            if isinstance(exc, RedisConnectionError):
                raise
            raise RedisConnectionError(f"cannot connect to Redis: {exc!r}") from exc
        finally:
            self._connecting = None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        if self.path:
            _, proto = await loop.create_unix_connection(lambda: _Protocol(self), self.path)
        else:
            _, proto = await loop.create_connection(lambda: _Protocol(self), self.host, self.port)
        hello: list[Command] = []
        if self.password:
            hello.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        if hello:
            try:
                replies = await self._send(proto, tuple(hello))
            except BaseException:
                proto.fail(RedisConnectionError("handshake failed"))
                raise
            for reply in replies:
                if isinstance(reply, ResponseError):
                    proto.fail(RedisConnectionError(f"handshake failed: {reply}"))
                    raise RedisConnectionError(f"Redis refused the handshake: {reply}")
        self._proto = proto
        return proto

    async def aclose(self) -> None:
        """Close the connection (pending calls get ``ConnectionError``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._proto is not None:
            self._proto.fail(RedisConnectionError("client closed"))
