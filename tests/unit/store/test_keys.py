"""Key names: one hash tag per key, and distinct ids never share a tag."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from recsys.store.keys import Keys

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
