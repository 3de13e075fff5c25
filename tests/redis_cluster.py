"""A real Redis Cluster on loopback for the cluster tests: 3 masters and 3 replicas of ``redis-server``.

Each node runs with ``appendonly yes`` and ``appendfsync always`` (the ledger's configuration) and a short
``cluster-node-timeout`` so that a failover takes about a second. ``redis-cli --cluster create`` assigns the slots
and pairs each master with a replica.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

NODE_TIMEOUT_MS = 1000


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
            ports.append(int(sock.getsockname()[1]))
    finally:
        for sock in socks:
            sock.close()
    # cluster bus ports are port + 10000: keep every port low enough for that
    return ports if all(p + 10000 < 65536 for p in ports) else _free_ports(n)


class LocalRedisCluster:
    """``start()`` launches the six nodes and forms the cluster; ``stop()`` kills them all."""

    def __init__(self, home: Path, *, masters: int = 3, replicas_per_master: int = 1) -> None:
        self.home = Path(home)
        self.n = masters * (1 + replicas_per_master)
        self.replicas_per_master = replicas_per_master
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """``redis+cluster://`` url listing every node (Centric's cluster url form)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def _launch(self, port: int) -> None:
        data = self.home / str(port)
        data.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "redis-server"
        args = [
            binary,
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--logfile", str(data / "redis.log"), "--daemonize", "no",
        ]  # fmt: skip
        self.processes[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, timeout: float = 30.0) -> str:
        """Start the nodes, create the cluster, wait until every slot is served; return the url."""
        if shutil.which("redis-cli") is None:
            raise RuntimeError("redis-cli not found: install redis-tools (Debian/Ubuntu: apt-get install redis-server)")
        self.ports = _free_ports(self.n)
        for port in self.ports:
            self._launch(port)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait_ping(port, deadline)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
        )  # fmt: skip
        self.wait_healthy(deadline)
        return self.url

    def _wait_ping(self, port: int, deadline: float) -> None:
        while True:
            with contextlib.suppress(redis.RedisError, OSError):
                if redis.Redis(port=port, socket_timeout=0.5).ping():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start; see {self.home / str(port)}")
            time.sleep(0.05)

    def wait_healthy(self, deadline: float) -> None:
        """Wait until every live node reports ``cluster_state:ok`` and every replica has synced."""
        while True:
            if all(self._node_ok(p) for p in self.processes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok in time")
            time.sleep(0.1)

    def _node_ok(self, port: int) -> bool:
        try:
            client = redis.Redis(port=port, socket_timeout=0.5)
            state = client.cluster("info")
            info = client.info("replication")
        except (redis.RedisError, OSError):
            return False
        if state.get("cluster_state") != "ok":
            return False
        return info.get("role") != "slave" or info.get("master_link_status") == "up"

    def master_of(self, key: str) -> int:
        """Return the port of the master now serving ``key``'s slot."""
        client = redis.Redis(port=next(iter(self.processes)), socket_timeout=1)
        slot = client.cluster("keyslot", key)
        for start, end, master, *_ in client.cluster("slots"):
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(f"no master for slot {slot}")

    def kill(self, port: int) -> None:
        """Kill one node with SIGKILL (a crash: no shutdown, no final fsync beyond what appendfsync did)."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(5)

    def restart(self, port: int, timeout: float = 15.0) -> None:
        """Start a killed node again on its data directory: it rejoins the cluster (as a replica once its master was
        replaced by a failover) and this returns when the cluster is healthy again."""
        self._launch(port)
        deadline = time.monotonic() + timeout
        self._wait_ping(port, deadline)
        self.wait_healthy(deadline)

    def promoted(self, key: str, old_master: int) -> bool:
        """Return whether a node other than ``old_master`` now serves ``key``'s slot (as any live node sees it)."""
        for port in self.processes:
            with contextlib.suppress(redis.RedisError, OSError, LookupError):
                client = redis.Redis(port=port, socket_timeout=0.5)
                slot = client.cluster("keyslot", key)
                for start, end, master, *_ in client.cluster("slots"):
                    if start <= slot <= end:
                        return int(master[1]) != old_master
        return False

    def stop(self) -> None:
        """Kill every node still running."""
        for port in list(self.processes):
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(port)


def cluster_from_env() -> str | None:
    """``CENTRIC_TEST_REDIS_CLUSTER_URL`` when a test run brings its own cluster (CI may)."""
    return os.environ.get("CENTRIC_TEST_REDIS_CLUSTER_URL") or None


@contextlib.contextmanager
def cluster_url_for_tests(home: Path) -> Iterator[str]:
    """Yield a ``redis+cluster://`` url: CENTRIC_TEST_REDIS_CLUSTER_URL, else a private 6-node cluster in ``home``."""
    configured = cluster_from_env()
    if configured:
        yield configured
        return
    cluster = LocalRedisCluster(home)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def drop_namespace(client: redis.RedisCluster | redis.Redis, pattern: str) -> None:
    """Delete every key matching ``pattern`` (on a cluster: on every master), one key at a time (any slot)."""
    for key in list(client.scan_iter(match=pattern, count=1000)):
        client.delete(key)
