"""The live contact policy: channel caps per period, cooldown, suppression, exhausted budgets, windows."""

from __future__ import annotations

import datetime as dt

from recsys.nba.policy import is_exhausted, live_offers
from recsys.store.base import OfferDecision
from recsys.store.keys import Fields

NOW = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
POLICY = {"max_per_channel": {"app": 2}, "period_days": 7, "cooldown_days": 14, "suppress_days": 90}
CATALOG = {
    o: {"id": o, "policy": POLICY, "cost": "2.00", "max_per_customer": 1, "max_redemptions": None, "max_spend": None}
    for o in ("a", "b", "c")
}
ROWS = [
    OfferDecision("c1", o, ch, rank=r, expected_value=1.0, p_accept=0.1)
    for r, o in enumerate("abc", 1)
    for ch in ("app", "email")
]


def ids(rows: list[OfferDecision]) -> list[str]:
    return [r.offer_id for r in rows]


def test_returns_best_ranked_offers_of_the_channel_up_to_the_contact_cap() -> None:
    assert ids(live_offers(ROWS, CATALOG, {}, {}, channel="app", k=3, now=NOW)) == ["a", "b"]
    assert ids(live_offers(ROWS, CATALOG, {}, {}, channel="app", k=1, now=NOW)) == ["a"]


def test_impressions_in_the_period_use_up_the_channel_cap_and_old_ones_do_not() -> None:
    state = {Fields.impressions("app", NOW - dt.timedelta(days=1)): "1"}
    assert ids(live_offers(ROWS, CATALOG, state, {}, channel="app", k=3, now=NOW)) == ["a"]
    state = {Fields.impressions("app", NOW): "2"}
    assert live_offers(ROWS, CATALOG, state, {}, channel="app", k=3, now=NOW) == []
    state = {Fields.impressions("app", NOW - dt.timedelta(days=8)): "5"}
    assert ids(live_offers(ROWS, CATALOG, state, {}, channel="app", k=3, now=NOW)) == ["a", "b"]


def test_dismissed_offer_cools_down_and_comes_back_after_the_cooldown() -> None:
    recent = {"dis:a": str(int((NOW - dt.timedelta(days=3)).timestamp()))}
    assert ids(live_offers(ROWS, CATALOG, recent, {}, channel="app", k=2, now=NOW)) == ["b", "c"]
    old = {"dis:a": str(int((NOW - dt.timedelta(days=15)).timestamp()))}
    assert ids(live_offers(ROWS, CATALOG, old, {}, channel="app", k=2, now=NOW)) == ["a", "b"]


def test_redeemed_offer_is_suppressed() -> None:
    state = {"red:b": str(int(NOW.timestamp())), "redn:b": "1"}
    assert ids(live_offers(ROWS, CATALOG, state, {}, channel="email", k=3, now=NOW)) == ["a", "c"]


def test_exhausted_offer_is_not_served() -> None:
    catalog = {**CATALOG, "a": {**CATALOG["a"], "max_redemptions": 10}, "b": {**CATALOG["b"], "max_spend": "20.00"}}
    assert ids(live_offers(ROWS, catalog, {}, {"a": 10, "b": 9}, channel="email", k=3, now=NOW)) == ["b", "c"]
    assert ids(live_offers(ROWS, catalog, {}, {"a": 9, "b": 10}, channel="email", k=3, now=NOW)) == ["a", "c"]
    assert is_exhausted({"max_spend": "20.00", "cost": "2.00"}, 10) and not is_exhausted(
        {"max_spend": "20.00", "cost": "2.00"}, 9
    )


def test_offer_outside_its_window_or_not_in_catalog_is_dropped() -> None:
    catalog = {"a": {**CATALOG["a"], "valid_to": "2025-05-01T00:00:00+00:00"}, "c": CATALOG["c"]}
    assert ids(live_offers(ROWS, catalog, {}, {}, channel="email", k=3, now=NOW)) == ["c"]
