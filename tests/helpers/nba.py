"""An in-memory snapshot store for the next-best-action tests: decision rows and the offer catalog."""

from __future__ import annotations

from typing import Any

import polars as pl

from recsys.store.base import OfferCatalog, OfferDecision, OfferDecisions


class FakeOfferStore:
    """Snapshot-store stand-in with the methods the offers service uses (same answers as the published store)."""

    def __init__(
        self, decisions: pl.DataFrame | list[dict[str, Any]], offers: list[dict[str, Any]], version: str = "v1"
    ) -> None:
        self.rows = decisions.to_dicts() if isinstance(decisions, pl.DataFrame) else list(decisions)
        self.offers, self.version = offers, version

    async def get_customer_offers(self, customer_id: str) -> OfferDecisions:
        rows = [r for r in self.rows if r["customer_id"] == customer_id]
        return OfferDecisions(self.version, [OfferDecision.from_row(r) for r in rows])

    async def get_offer_catalog(self) -> OfferCatalog:
        return OfferCatalog(self.version, self.offers)

    async def get_offer_audience(self, offer_id: str) -> OfferDecisions:
        rows = [r for r in self.rows if r["offer_id"] == offer_id]
        return OfferDecisions(self.version, [OfferDecision.from_row(r) for r in rows])

    async def record_purchases(self, purchases: list) -> None:
        """Purchases are not part of these tests."""
