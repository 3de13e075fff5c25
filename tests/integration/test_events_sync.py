"""``centric events sync``: the stream drains into the event store exactly once, and is trimmed only up to it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import redis

from recsys.events import store as store_module
from recsys.events.store import EventStore
from recsys.events.sync import sync_events
from recsys.exceptions import StoreUnavailable
from recsys.store.keys import Fields, Keys
from serving.services import events as events_service
from tests.helpers.events import post_events
from training.jobs.report import read_events


def _event(i: int, kind: str = "purchase") -> dict:
    return {
        "type": kind,
        "customer_id": f"c{i % 7}",
        "item_id": f"i{i}",
        "quantity": 1.0,
        "price": 2.5,
        "order_id": f"o{i}",
        "timestamp": dt.datetime(2026, 12, 1 + i % 3, 10, tzinfo=dt.UTC),
    }


def test_sync_stores_every_posted_event_once_and_trims_the_stream(
    redis_url: str, redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    post_events(redis_url, keys, [_event(i) for i in range(50)])
    store = EventStore(tmp_path / "events")
    first = sync_events(redis_client, keys, store, batch=16)
    assert (first.events, first.batches, first.backlog) == (50, 4, 0)
    frame = store.scan().collect()
    assert frame.height == 50 and frame.get_column("stream_id").n_unique() == 50
    assert sorted(store.partitions()) == ["date=2026-12-01", "date=2026-12-02", "date=2026-12-03"]
    row = frame.filter(pl.col("item_id") == "i4").row(0, named=True)
    assert (row["customer_id"], row["order_id"], row["price"], row["quantity"]) == ("c4", "o4", 2.5, 1.0)
    assert row["timestamp"] == dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)
    assert redis_client.xlen(keys.events_stream()) == 0
    assert redis_client.hget(keys.events_sync_state(), Fields.SYNC_ID).decode() == store.checkpoint().last_id
    again = sync_events(redis_client, keys, store)
    assert (again.events, store.checkpoint().events) == (0, 50)


def test_sync_killed_between_files_and_commit_stores_the_batch_once(
    redis_url: str, redis_client: redis.Redis, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_events(redis_url, keys, [_event(i) for i in range(30)])
    store = EventStore(tmp_path / "events")
    real = store_module._durable_rename

    def die_at_commit(tmp: Path, final: Path) -> None:
        if final.name == store_module.CHECKPOINT and store.checkpoint().batches == 1:
            raise KeyboardInterrupt("killed")  # the second batch's files are on disk, its commit is not
        real(tmp, final)

    monkeypatch.setattr(store_module, "_durable_rename", die_at_commit)
    with pytest.raises(KeyboardInterrupt):
        sync_events(redis_client, keys, store, batch=10)
    assert store.checkpoint().events == 10
    assert redis_client.xlen(keys.events_stream()) == 20  # nothing past the commit was trimmed
    monkeypatch.setattr(store_module, "_durable_rename", real)
    sync_events(redis_client, keys, store, batch=10)
    frame = store.scan().collect()
    assert frame.height == 30 and frame.get_column("item_id").n_unique() == 30


def test_flat_entries_keep_fields_outside_the_schema(redis_client: redis.Redis, keys: Keys, tmp_path: Path) -> None:
    stream = keys.events_stream()
    redis_client.xadd(stream, {"type": "view", "customer_id": "a", "item_id": "x", "page": "home"})
    redis_client.xadd(stream, {"data": json.dumps({"type": "redeem", "customer_id": "b", "offer_id": "o1"})})
    redis_client.xadd(stream, {"type": "purchase", "customer_id": "c", "item_id": "y", "quantity": "two"})
    store = EventStore(tmp_path / "events")
    sync_events(redis_client, keys, store)
    frame = store.scan().collect().sort("stream_id")
    assert frame.get_column("type").to_list() == ["view", "redeem", "purchase"]
    assert json.loads(frame.item(0, "extra")) == {"page": "home"}
    assert frame.item(1, "offer_id") == "o1"
    assert frame.item(2, "quantity") is None  # unparsable: null here, rejected with a reason by the history


def test_events_are_refused_not_dropped_at_the_backlog_limit(
    redis_url: str, redis_client: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_service, "BACKLOG_CHECK_S", 0.0)
    post_events(redis_url, keys, [_event(i) for i in range(5)], backlog_limit=5)
    with pytest.raises(StoreUnavailable, match="centric events sync"):
        post_events(redis_url, keys, [_event(9)], backlog_limit=5)
    assert redis_client.xlen(keys.events_stream()) == 5


def test_experiment_report_reads_the_store_and_the_stream(
    redis_url: str, redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    post_events(redis_url, keys, [_event(i) for i in range(4)])
    sync_events(redis_client, keys, EventStore(tmp_path / "events"))
    post_events(redis_url, keys, [_event(i) for i in range(4, 6)])
    frame = read_events(redis_client, keys, tmp_path / "events")
    assert frame.height == 6 and set(frame.get_column("type")) == {"purchase"}
