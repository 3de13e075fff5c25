"""Affinity of customers to an offer's targets, from recommendations and top categories."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from recsys.nba.affinity import NEUTRAL, offer_affinity
from recsys.nba.offers import Offer

CUSTOMERS = pl.DataFrame({"customer_id": ["a", "b", "c"], "top_categories": [["CHEESE"], ["BEEF"], None]})
RECS = pl.DataFrame({"customer_id": ["a", "a", "b", "b"], "item_id": ["i1", "i2", "i2", "i3"], "rank": [1, 2, 1, 2]})
ITEMS = pl.DataFrame({"item_id": ["i1", "i2", "i3"], "category": ["CHEESE", "BEEF", "BEEF"]})


def offer(**targets: tuple[str, ...]) -> Offer:
    return Offer(id="o", name="o", kind="content", channels=("app",), value=Decimal(1), **targets)


def test_category_targets_combine_recommendation_share_and_top_categories() -> None:
    got = offer_affinity(CUSTOMERS, offer(target_categories=("CHEESE",)), RECS, ITEMS).to_list()
    # a: half its recs are cheese (0.5) and cheese is a top category (1) → 0.75; b: neither; c: no recs, no categories
    assert got == pytest.approx([0.75, 0.0, 0.0])


def test_item_targets_and_missing_recommendations() -> None:
    got = offer_affinity(CUSTOMERS, offer(target_items=("i3",)), RECS, ITEMS).to_list()
    assert got == pytest.approx([0.0, 0.25, 0.0])
    assert offer_affinity(CUSTOMERS, offer(target_categories=("BEEF",)), None, None).to_list() == [0.0, 1.0, 0.0]


def test_offer_without_targets_is_neutral() -> None:
    assert offer_affinity(CUSTOMERS, offer(), RECS, ITEMS).to_list() == [NEUTRAL] * 3
