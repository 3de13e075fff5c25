"""The experiment report reads outcomes from the events stream in Redis."""

from __future__ import annotations

import json

import redis

from recsys.store.keys import Keys
from training.jobs.report import read_event_stream


def test_stream_events_are_read_in_flat_and_json_form(redis_client: redis.Redis, keys: Keys) -> None:
    stream = keys.events_stream()
    redis_client.xadd(stream, {"type": "purchase", "customer_id": "a", "price": "2.5", "quantity": "2"})
    redis_client.xadd(stream, {"data": json.dumps({"type": "redeem", "customer_id": "b", "offer_id": "o1"})})
    for i in range(5):
        redis_client.xadd(stream, {"type": "view", "customer_id": f"v{i}"})
    frame = read_event_stream(redis_client, keys, batch=2)
    assert frame.height == 7
    purchase = frame.filter(frame["type"] == "purchase").row(0, named=True)
    assert purchase["price"] * purchase["quantity"] == 5.0
    assert frame.filter(frame["type"] == "redeem").get_column("offer_id").to_list() == ["o1"]
