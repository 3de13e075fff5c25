"""Key names: one hash tag per key, and distinct ids never share a tag; field names shared with the Lua scripts."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from recsys.loyalty import ops
from recsys.store import scripts
from recsys.store.keys import Fields, Keys
from recsys.store.prepare import fallback_reason

K = Keys("t")


def _tag(key: str) -> str:
    # what Redis Cluster hashes: the text between the first '{' and the next '}'
    return re.match(r"[^{]*\{([^}]*)\}", key).group(1)


def test_plain_ids_keep_their_key_names():
    assert K.loyalty_account("900") == "centric:t:loy:acct:{lc:900}"
    assert K.loyalty_stock("coffee") == "centric:t:loy:stock:{lr:coffee}"


@given(st.text(alphabet="ab{}()%7BD", max_size=6), st.text(alphabet="ab{}()%7BD", max_size=6))
def test_distinct_customer_ids_get_distinct_tags_and_keys(a, b):
    if a != b:
        assert _tag(K.loyalty_account(a)) != _tag(K.loyalty_account(b))
    for builder in (K.loyalty_account, K.loyalty_lots, K.loyalty_entries, K.loyalty_idempotency, K.loyalty_orders):
        assert _tag(builder(a)) == _tag(K.loyalty_account(a))  # one slot for the ledger script
        assert builder(a).count("{") == 1 and builder(a).count("}") == 1


def test_fields_written_by_lua_are_spelled_as_fields_reads_them():
    """ledger.lua writes the account's month and lot fields and stock.lua the reservations; Python reads them."""
    assert f"'{Fields.ACCOUNT_EARNED_PREFIX}' .. " in scripts.LEDGER.source
    assert f"'{Fields.ACCOUNT_LOT_PREFIX}' .. " in scripts.LEDGER.source
    assert f"'{Fields.RESERVATION_PREFIX}' .. " in scripts.STOCK.source
    assert f"'{Fields.STOCK}'" in scripts.STOCK.source
    acct = ops.decode_account({b"em:202503": b"7", b"lot:1767225600": b"5", b"balance": b"5"})
    assert acct["earned"] == {"202503": 7} and acct["lots"] == {1767225600: 5} and acct["balance"] == 5
    field = Fields.RESERVATION_PREFIX + ops.reservation_key("c:1", "k:2")
    assert ops.parse_reservation(field) == ("c:1", "k:2")


def test_contact_fields_count_impressions_by_utc_day():
    late = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert Fields.impressions("app", late) == "imp:app:20250311"
    assert [Fields.dismissed("o"), Fields.redeemed("o"), Fields.redemptions("o")] == ["dis:o", "red:o", "redn:o"]


def test_fallback_list_names_read_back_as_their_reason():
    assert [Fields.category_fallback("dairy"), Fields.segment_fallback("champions")] == [
        "category:dairy",
        "segment:champions",
    ]
    assert [fallback_reason(n) for n in (Fields.FALLBACK_POPULAR, Fields.category_fallback("dairy"))] == [
        "popular with all customers",
        "popular in dairy",
    ]
    assert fallback_reason(Fields.segment_fallback("champions")) == "popular with champions customers"
    assert fallback_reason(Fields.FALLBACK_TRENDING) == "trending: bought more often recently"
