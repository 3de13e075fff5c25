"""The store seam: what publishing writes and what serving reads, independent of Redis.

``SnapshotPublisher`` (synchronous, used by offline jobs) writes a ``SnapshotData`` as a new version,
verifies it and activates it atomically; ``SnapshotReader`` (async, used by the service) answers
through the active version. ``recsys.store.redis_store`` implements both on Redis,
``recsys.store.memory`` in memory; ``tests/contract/test_store_contract.py`` holds both to one contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
import polars as pl

# Progress callback: (step description, units done, units total).
ProgressFn = Callable[[str, int, int], None]


@dataclass
class SnapshotData:
    """Everything one snapshot holds; every part optional (see the artifact table in docs/CONTRACTS.md)."""

    recommendations: pl.DataFrame | None = None  # customer_id, item_id, rank, score, source, reason
    similar_items: pl.DataFrame | None = None  # item_id, similar_item_id, rank, score
    fallbacks: pl.DataFrame | None = None  # list, item_id, rank, score
    items: pl.DataFrame | None = None  # item_id, name, category, price, in_stock, repeat_category
    profiles: pl.DataFrame | None = None  # customer_id + ProfileColumns
    segment_top_items: pl.DataFrame | None = None  # segment, item_id, rank, score
    decisions: pl.DataFrame | None = None  # customer_id, channel, offer_id, rank, expected_value, p_accept, reason, arm
    offers: list[dict[str, Any]] | None = None
    experiments: Any = None
    model_files: dict[str, bytes] = field(default_factory=dict)  # recommender/ files, for fold-in
    manifest: dict[str, Any] = field(default_factory=dict)
    # aggregates for the dashboard (``recsys.analytics.dashboard``): one small JSON document per version
    dashboard: dict[str, Any] | None = None


class RankedItem(NamedTuple):
    """One entry of a ranked list, with external ids only (a tuple: built 20 at a time per request, cheaply)."""

    item_id: str
    score: float
    source: str
    reason: str


@dataclass(frozen=True)
class RankedList:
    """A ranked list read from one snapshot version."""

    version: str
    items: list[RankedItem]


@dataclass(frozen=True)
class VersionInfo:
    """A published version: id, publish time, whether it is active, and its record counts."""

    version: str
    created_at: dt.datetime
    active: bool
    counts: dict[str, int]


@dataclass(frozen=True)
class PublishReport:
    """What a publish wrote and checked."""

    version: str
    counts: dict[str, int]
    checksums: dict[str, str]
    seconds: float
    removed_versions: list[str]
    notes: list[str]


@dataclass(frozen=True)
class OfferDecision:
    """One published next-best-action decision: offer ``offer_id`` for ``customer_id`` on ``channel``."""

    customer_id: str
    offer_id: str
    channel: str
    rank: int
    expected_value: float
    p_accept: float
    reason: str = ""
    arm: str = "none"

    @classmethod
    def from_row(cls, row: Mapping[str, Any], customer_id: str = "") -> OfferDecision:
        """Build from a decision row (``decisions.parquet`` columns); ``customer_id`` when the row has none."""
        return cls(
            customer_id=str(row.get("customer_id") or customer_id),
            offer_id=str(row["offer_id"]),
            channel=str(row.get("channel") or ""),
            rank=int(row.get("rank") or 0),
            expected_value=float(row.get("expected_value") or 0.0),
            p_accept=float(row.get("p_accept") or 0.0),
            reason=str(row.get("reason") or ""),
            arm=str(row.get("arm") or "none"),
        )


@dataclass(frozen=True)
class OfferDecisions:
    """Decisions read from one snapshot version (one customer's, or one offer's audience)."""

    version: str | None
    decisions: list[OfferDecision]


@dataclass(frozen=True)
class OfferCatalog:
    """The offer definitions of one snapshot version, as published (``offers.json``: policy, budget, window)."""

    version: str | None
    offers: list[dict[str, Any]]

    def by_id(self) -> dict[str, dict[str, Any]]:
        """Return the definitions keyed by offer id."""
        return {str(o["id"]): o for o in self.offers}


@dataclass(frozen=True)
class ItemInfo:
    """Item metadata used for filtering and reasons."""

    item_id: str
    name: str | None
    category: str | None
    price: float | None
    in_stock: bool
    repeat_category: bool


@dataclass
class ItemTable:
    """Items of one version in position order; positions never leave the process."""

    ids: tuple[str, ...]
    names: list[str | None]
    categories: list[str | None]
    prices: np.ndarray
    in_stock: np.ndarray
    repeat: np.ndarray
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {item_id: i for i, item_id in enumerate(self.ids)}

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> ItemTable:
        """Build from a frame with ``item_id`` and optional ``name``, ``category``, ``price``, ``in_stock``,
        ``repeat_category``."""
        n = frame.height

        def col(name: str, default: Any, dtype: Any) -> pl.Series:
            if name in frame.columns:
                return frame.get_column(name).cast(dtype)
            return pl.Series(name, [default] * n, dtype=dtype)

        return cls(
            ids=tuple(frame.get_column("item_id").cast(pl.String).to_list()),
            names=col("name", None, pl.String).to_list(),
            categories=col("category", None, pl.String).to_list(),
            prices=col("price", None, pl.Float64).fill_null(float("nan")).to_numpy(),
            in_stock=col("in_stock", True, pl.Boolean).fill_null(True).to_numpy().astype(bool),
            repeat=col("repeat_category", False, pl.Boolean).fill_null(False).to_numpy().astype(bool),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, item_id: str) -> ItemInfo | None:
        """Return the item's metadata, or ``None`` if the version does not know it."""
        i = self.index.get(item_id)
        if i is None:
            return None
        price = float(self.prices[i])
        return ItemInfo(
            item_id,
            self.names[i],
            self.categories[i],
            None if price != price else price,
            bool(self.in_stock[i]),
            bool(self.repeat[i]),
        )


class SnapshotPublisher(Protocol):
    """Writes versions and moves the active pointer. Synchronous: offline jobs call it."""

    def publish(
        self, data: SnapshotData, *, keep: int = 3, ttl_s: int = 7 * 86_400, progress: ProgressFn | None = None
    ) -> PublishReport:
        """Write ``data`` as a new version, verify it, activate it, prune old versions; return the report.

        Raises ``Conflict`` if another publish holds the lock, ``ArtifactError`` if verification fails
        (the previous version stays active), ``StoreUnavailable`` if the store cannot be reached.
        """
        ...

    def active_version(self) -> str | None:
        """Return the active version id, or ``None``."""
        ...

    def versions(self) -> list[VersionInfo]:
        """Return the kept versions, newest first."""
        ...

    def activate(self, version: str) -> None:
        """Make a kept version active; raises ``NotFound`` if it is not kept."""
        ...

    def rollback(self) -> str:
        """Activate the version published before the active one and return it; raises ``NotFound`` if none."""
        ...


class SnapshotReader(Protocol):
    """Async reads through the active version (serving). Errors: ``NoActiveSnapshot``, ``StoreUnavailable``."""

    async def version(self) -> str:
        """Return the active version id; raises ``NoActiveSnapshot`` when none."""
        ...

    async def recommendations(self, customer_id: str) -> tuple[RankedList | None, dict[str, float]]:
        """Return the customer's published list (``None`` if absent) and their purchases since the snapshot."""
        ...

    async def similar(self, item_id: str) -> RankedList | None:
        """Return the item's similar items, or ``None`` if the version has none for it."""
        ...

    async def fallback(self, name: str) -> RankedList | None:
        """Return a fallback list (``popular``, ``trending``, ``category:<c>``, ``segment:<s>``) or ``None``."""
        ...

    async def fallback_names(self) -> list[str]:
        """Return the names of the version's fallback lists."""
        ...

    async def profile(self, customer_id: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(version, profile)`` or ``None`` if the customer has no profile."""
        ...

    async def items(self) -> ItemTable:
        """Return the active version's item table."""
        ...

    async def record_purchases(self, purchases: list[tuple[str, str, float]]) -> None:
        """Remember ``(customer_id, item_id, epoch seconds)`` purchases for real-time filtering."""
        ...

    async def get_customer_offers(self, customer_id: str) -> OfferDecisions:
        """Return the customer's published offer decisions (none if the customer has none)."""
        ...

    async def get_offer_catalog(self) -> OfferCatalog:
        """Return the published offer definitions."""
        ...

    async def get_offer_audience(self, offer_id: str) -> OfferDecisions:
        """Return every published decision of this offer (its audience)."""
        ...

    async def model_files(self) -> Mapping[str, bytes]:
        """Return the recommender artifact files published with the version (for fold-in); empty if none."""
        ...

    async def dashboard(self) -> dict[str, Any]:
        """Return ``{"version", "created_at", "dashboard": aggregates or None, "experiments": document or None}``."""
        ...
