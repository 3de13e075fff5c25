"""Crash: kill -9 the ledger's Redis mid-run (appendfsync always); after a restart every acknowledged write is there."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import redis

from recsys.loyalty.ledger import RedisLedger
from recsys.loyalty.program import load_program
from recsys.store.connection import sync_client
from recsys.store.embedded import EmbeddedRedis
from recsys.store.keys import Keys

PROGRAM = load_program(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "loyalty.toml")
NOW = datetime(2025, 5, 1, tzinfo=UTC)


def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, appendfsync="always")
    url = server.start()
    keys = Keys("crash")
    acked: list[tuple[str, str, int]] = []  # (customer, entry id, balance after)

    def writer(worker: int) -> None:
        client = sync_client(url, socket_timeout=2)
        ledger = RedisLedger(client, keys, PROGRAM)
        for n in range(100_000):
            cid = f"c{(n + worker) % 5}"
            try:
                out = ledger.earn(cid, f"w{worker}-o{n}", Decimal(7), [], NOW, f"w{worker}-{n}")
            except redis.RedisError:
                return  # the server died: this write was never acknowledged
            acked.append((cid, out["entry"]["id"], out["balance"]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(server._process.pid, signal.SIGKILL)
    for t in threads:
        t.join(timeout=10)
    assert len(acked) >= 300

    (tmp_path / "redis" / "redis.pid").unlink(missing_ok=True)
    restarted = EmbeddedRedis(tmp_path, appendfsync="always")
    client = sync_client(restarted.start())
    try:
        ledger = RedisLedger(client, keys, PROGRAM)
        for cid in {c for c, _, _ in acked}:
            ids = {e["id"] for e in ledger.entries(cid)}
            mine = [(i, b) for c, i, b in acked if c == cid]
            assert {i for i, _ in mine} <= ids
            balance = ledger.account(cid)["balance"]
            assert balance >= max(b for _, b in mine)
            assert balance == sum(e["amount"] for e in ledger.entries(cid))
    finally:
        client.close()
        restarted.stop()
