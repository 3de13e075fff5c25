"""The one place that decides how Centric connects to Redis: a single server or a Redis Cluster.

URL forms (``CENTRIC_REDIS_URL``):

- ``redis://host:port/db`` (or ``rediss://``, ``unix://``): one server, through ``redis.Redis`` /
  ``redis.asyncio.Redis``;
- ``redis+cluster://host:port[,host:port...]`` (or ``rediss+cluster://`` for TLS): a Redis Cluster, through
  redis-py's ``RedisCluster`` clients, sync and asyncio. The listed nodes are only where discovery starts: the
  clients learn the slot map from any of them and follow ``MOVED``/``ASK`` redirections and failovers. Query
  parameters (``?password=...``) apply to every node.

Every atomic operation (each Lua script and each ``MULTI``) touches keys of one hash slot; ``Keys`` chooses the
hash tags so that this holds, and ``tests/integration/test_cluster_slots.py`` checks it for every script call.
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.cluster import ClusterNode

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

SyncRedis: TypeAlias = redis.Redis | redis.RedisCluster
AsyncRedis: TypeAlias = aioredis.Redis | aioredis.RedisCluster


def is_cluster_url(url: str) -> bool:
    """Return whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


def _cluster_parts(url: str) -> tuple[str, list[tuple[str, int]]]:
    """Return (a plain ``redis://`` url of the first node, every listed ``(host, port)``).

    Raises ``ValueError`` naming the url when it lists no node or a port is not a number.
    """
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES[parts.scheme.lower()]
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "6379")
        if not host or not port.isdigit():
            raise ValueError(f"Redis Cluster url {_redact(url)!r}: node {item!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ValueError(f"Redis Cluster url {_redact(url)!r} names no node; use redis+cluster://host:port")
    netloc = (userinfo + "@" if userinfo else "") + f"{nodes[0][0]}:{nodes[0][1]}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, "")), nodes


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))


def sync_client(url: str, **kwargs: Any) -> SyncRedis:
    """Return a synchronous client for ``url``: ``redis.RedisCluster`` for a cluster url, else ``redis.Redis``."""
    return _client(url, kwargs, redis.Redis, redis.RedisCluster, ClusterNode)


def async_client(url: str, **kwargs: Any) -> AsyncRedis:
    """Return a ``redis.asyncio`` client for ``url``: ``RedisCluster`` for a cluster url, else ``Redis``."""
    return _client(url, kwargs, aioredis.Redis, aioredis.RedisCluster, AsyncClusterNode)


def _client(url: str, kwargs: dict[str, Any], single: Any, cluster: Any, node: Any) -> Any:
    """Connect with ``single.from_url`` or, for a cluster url, ``cluster.from_url`` on its listed ``node``s."""
    if not is_cluster_url(url):
        return single.from_url(url, **kwargs)
    first, nodes = _cluster_parts(url)
    kwargs.pop("health_check_interval", None)
    return cluster.from_url(first, startup_nodes=[node(h, p) for h, p in nodes], **kwargs)
