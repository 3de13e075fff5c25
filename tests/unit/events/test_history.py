"""The history: base transactions plus synced purchases and returns, each line once, every row accounted for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from recsys.events.history import DUPLICATE, load_history
from recsys.events.store import EVENT_SCHEMA, EventStore

T0 = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)


def _base(tmp_path: Path) -> Path:
    path = tmp_path / "base.csv"
    path.write_text(
        "customer_id,item_id,timestamp,quantity,price,order_id\n"
        "c1,apple,2026-10-01T10:00:00Z,1,2.0,o1\n"
        "c2,pear,2026-10-02T10:00:00Z,2,1.5,o2\n"
    )
    return path


def _events(rows: list[dict], first: int) -> pl.DataFrame:
    full = []
    for n, row in enumerate(rows):
        base = dict.fromkeys(EVENT_SCHEMA)
        base.update(stream_id=f"{1000 + first + n}-0", received_at=T0, timestamp=T0, quantity=1.0, price=1.0)
        base.update(row)
        full.append(base)
    return pl.DataFrame(full, schema=EVENT_SCHEMA)


def _append(store: EventStore, rows: list[dict], first: int) -> None:
    frame = _events(rows, first)
    store.append(frame, frame.get_column("stream_id").item(-1))


def test_purchases_join_the_history_once_and_returns_stay_returns(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events")
    order = {"type": "purchase", "customer_id": "c1", "item_id": "kiwi", "order_id": "o9", "price": 3.0}
    _append(store, [order, {**order, "item_id": "fig"}, {"type": "view", "customer_id": "c1", "item_id": "x"}], 0)
    _append(store, [order, {"type": "return", "customer_id": "c1", "item_id": "kiwi", "order_id": "o9"}], 10)
    # the base file's own order sent again through the API, and a row without a price
    _append(
        store,
        [
            {"type": "purchase", "customer_id": "c1", "item_id": "apple", "order_id": "o1", "price": 2.0},
            {"type": "purchase", "customer_id": "c3", "item_id": "fig", "price": None},
        ],
        20,
    )
    history = load_history(_base(tmp_path), store, tmp_path / "work", rejects_path=tmp_path / "rejects.csv")
    result, summary = history.result, history.summary
    assert sorted(result.transactions.get_column("item_id").to_list()) == ["apple", "fig", "kiwi", "pear"]
    assert result.returns.get_column("item_id").to_list() == ["kiwi"]
    assert history.events.transactions.height == 2 and history.events.returns.height == 1
    assert summary.event_rejected == {DUPLICATE: 2, "missing_price": 1}
    report = result.report
    assert report.rows_read == 2 + 6 and report.rows_used + report.rows_rejected == report.rows_read
    rejects = pl.read_csv(tmp_path / "rejects.csv")
    assert sorted(rejects.get_column("reason").to_list()) == [DUPLICATE, DUPLICATE, "missing_price"]


def test_event_files_already_validated_are_not_parsed_again(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events")
    base = _base(tmp_path)
    _append(store, [{"type": "purchase", "customer_id": "c1", "item_id": "kiwi"}], 0)
    first = load_history(base, store, tmp_path / "work").summary
    _append(store, [{"type": "purchase", "customer_id": "c2", "item_id": "fig"}], 10)
    second = load_history(base, store, tmp_path / "work")
    assert (first.event_files_parsed, first.base_cached) == (1, False)
    assert (second.summary.event_files, second.summary.event_files_parsed, second.summary.base_cached) == (2, 1, True)
    assert second.result.transactions.height == 4


def test_shift_moves_the_base_dates_and_leaves_event_dates_alone(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events")
    _append(store, [{"type": "purchase", "customer_id": "c1", "item_id": "kiwi", "order_id": "o9"}], 0)
    history = load_history(_base(tmp_path), store, tmp_path / "work", shift=dt.timedelta(days=30))
    when = dict(
        zip(
            history.result.transactions.get_column("item_id").to_list(),
            history.result.transactions.get_column("timestamp").to_list(),
            strict=True,
        )
    )
    assert when["apple"] == dt.datetime(2026, 10, 31, 10, tzinfo=dt.UTC)  # 2026-10-01 + 30 days
    assert when["kiwi"] == T0  # an event keeps the date it was posted with
    # the base's own order sent again is still a duplicate after the shift (lines are matched without the date)
    _append(store, [{"type": "purchase", "customer_id": "c1", "item_id": "apple", "order_id": "o1", "price": 2.0}], 5)
    again = load_history(_base(tmp_path), store, tmp_path / "work", shift=dt.timedelta(days=30))
    assert again.summary.event_rejected == {DUPLICATE: 1}
