"""The compact encoding: bucket hashing agrees one-at-a-time and vectorised; records round-trip."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from recsys.store import codec


@given(st.lists(st.text(max_size=24), min_size=1, max_size=50))
def test_vectorised_bucket_hash_matches_the_per_id_hash(ids: list[str]) -> None:
    many = codec.fnv1a32_many(ids)
    assert [int(h) for h in many] == [codec.fnv1a32(i) for i in ids]
    assert list(codec.buckets_of(ids, 7)) == [codec.bucket_of(i, 7) for i in ids]


def test_ranked_lists_round_trip_with_float16_scores() -> None:
    dtype = codec.list_dtype(n_items=70_000, n_labels=3)
    assert dtype.itemsize == 4 + 2 + 1
    blob = codec.encode_lists(
        np.array([69_999, 5, 7]), np.array([0.91, 0.5, 0.25], dtype=np.float32), np.array([2, 0, 1]), dtype
    )
    first, second = codec.split_blob(blob, np.array([2, 1]), dtype.itemsize)
    rows = codec.decode_list(first, dtype)
    assert rows["pos"].tolist() == [69_999, 5] and rows["label"].tolist() == [2, 0]
    assert np.allclose(rows["score"], [0.91, 0.5], atol=1e-3)
    assert codec.decode_list(second, dtype)["pos"].tolist() == [7]
    assert codec.list_dtype(100, 70_000)["label"].itemsize == 4


def test_profile_records_round_trip_with_nulls_and_lists() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "segment": ["champions", None],
            "clv": [12.5, None],
            "orders": [3, None],
            "top_categories": [["dairy", "bakery", "drinks", "more"], []],
            "last_purchase": pl.Series([dt.datetime(2024, 5, 1, tzinfo=dt.UTC), None], dtype=pl.Datetime("us", "UTC")),
            "vip": [True, False],
        }
    )
    profile_codec = codec.ProfileCodec.for_frame(frame, "customer_id")
    assert codec.ProfileCodec.from_json(profile_codec.to_json()) == profile_codec
    records = profile_codec.encode(frame)
    a, b = (profile_codec.decode(records[i : i + 1].tobytes()) for i in range(2))
    assert a == {
        "segment": "champions",
        "clv": 12.5,
        "orders": 3,
        "top_categories": ["dairy", "bakery", "drinks"],
        "last_purchase": "2024-05-01T00:00:00+00:00",
        "vip": True,
    }
    assert b == {
        "segment": None,
        "clv": None,
        "orders": None,
        "top_categories": [],
        "last_purchase": None,
        "vip": False,
    }


@given(st.text(min_size=1, max_size=30), st.integers(min_value=0, max_value=3_000_000))
def test_a_customers_bucket_and_live_keys_share_one_cluster_slot(customer_id: str, customers: int) -> None:
    from redis.crc import key_slot

    from recsys.store.keys import Keys

    keys = Keys("prod")
    n = codec.n_buckets_for(customers)
    bucket_key = keys.snapshot_bucket("20260101T000000-abcd", "recs", codec.bucket_of(customer_id, n))
    assert key_slot(bucket_key.encode()) == key_slot(keys.recent_purchases(customer_id).encode())
