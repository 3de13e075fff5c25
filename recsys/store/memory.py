"""In-memory store: the fake for unit tests, held to the same contract as the Redis store."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.exceptions import NoActiveSnapshot, NotFound
from recsys.store import codec
from recsys.store.base import (
    ItemTable,
    OfferCatalog,
    OfferDecision,
    OfferDecisions,
    PublishReport,
    RankedItem,
    RankedList,
    SnapshotData,
    VersionInfo,
)
from recsys.store.codec import ProfileCodec
from recsys.store.prepare import Prepared, fallback_reason, prepare


def new_version_id(now: dt.datetime | None = None) -> str:
    """Return a sortable, unique version id such as ``20260101T120000-3f2a``."""
    import secrets

    now = now or utcnow()
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class _Version:
    version: str
    created_at: dt.datetime
    prepared: Prepared
    table: ItemTable
    recs: dict[str, list[RankedItem]]
    similar: dict[str, list[RankedItem]]
    profiles: dict[str, dict[str, Any]]
    decisions: dict[str, list[dict[str, Any]]]
    counts: dict[str, int]


def _ranked(
    frame: pl.DataFrame | None, owner: str, table: ItemTable, labels: list[tuple[str, str]]
) -> dict[str, list[RankedItem]]:
    if frame is None:
        return {}
    out: dict[str, list[RankedItem]] = {}
    for key, pos, score, label in frame.iter_rows():
        source, reason = labels[label]
        # float16 rounding as in the Redis encoding, so both stores give the same scores.
        out.setdefault(key, []).append(RankedItem(table.ids[pos], float(codec.to_f16(score)), source, reason))
    return out


class MemoryStore:
    """Publisher and reader in one object (no I/O; a version is a set of dicts built by ``prepare``)."""

    def __init__(self) -> None:
        self._versions: dict[str, _Version] = {}
        self._order: list[str] = []
        self._active: str | None = None
        self._recent: dict[str, dict[str, float]] = {}

    # --- publisher -------------------------------------------------------------------
    def publish(
        self, data: SnapshotData, *, keep: int = 3, ttl_s: int = 7 * 86_400, progress: Any = None
    ) -> PublishReport:
        """Store ``data`` as a new active version (see ``SnapshotPublisher.publish``)."""
        start = time.perf_counter()
        prepared = prepare(data)
        table = ItemTable.from_frame(prepared.items)
        version = new_version_id()
        while version in self._versions:
            version = new_version_id()
        recs = _ranked(prepared.recs, Columns.customer_id, table, prepared.labels)
        similar = _ranked(prepared.similar, Columns.item_id, table, prepared.labels)
        profiles = {}
        if prepared.profiles is not None:
            # Same record codec as Redis, so both stores answer with the same types and precision.
            codec = ProfileCodec.for_frame(prepared.profiles, Columns.customer_id)
            records = codec.encode(prepared.profiles)
            for customer_id, record in zip(prepared.profiles.get_column(Columns.customer_id).to_list(), records):
                profiles[customer_id] = codec.decode(record.tobytes())
        decisions: dict[str, list[dict[str, Any]]] = {}
        if prepared.decisions is not None:
            for row in prepared.decisions.iter_rows(named=True):
                decisions.setdefault(row[Columns.customer_id], []).append(row)
        counts = {
            "customers": len(recs),
            "recommendations": sum(map(len, recs.values())),
            "items": len(table),
            "similar": len(similar),
            "profiles": len(profiles),
            "fallbacks": len(prepared.fallbacks),
            "offer_customers": len(decisions),
        }
        if progress is not None:
            progress("write recs", counts["customers"], counts["customers"])
        self._versions[version] = _Version(
            version, utcnow(), prepared, table, recs, similar, profiles, decisions, counts
        )
        self._order.insert(0, version)
        self._active = version
        removed = self._order[keep:]
        for old in removed:
            del self._versions[old]
        self._order = self._order[:keep]
        return PublishReport(version, counts, {}, time.perf_counter() - start, removed, [])

    def active_version(self) -> str | None:
        """Return the active version id or ``None``."""
        return self._active

    def versions(self) -> list[VersionInfo]:
        """Return kept versions, newest first."""
        return [
            VersionInfo(v, self._versions[v].created_at, v == self._active, self._versions[v].counts)
            for v in self._order
        ]

    def activate(self, version: str) -> None:
        """Activate a kept version; raises ``NotFound`` otherwise."""
        if version not in self._versions:
            raise NotFound(f"version {version!r} is not kept; see `centric publish --list`")
        self._active = version

    def rollback(self) -> str:
        """Activate the version published before the active one."""
        if self._active is None or self._active not in self._order:
            raise NotFound("nothing to roll back: no active version")
        i = self._order.index(self._active)
        if i + 1 >= len(self._order):
            raise NotFound(f"no version older than {self._active} is kept to roll back to")
        self._active = self._order[i + 1]
        return self._active

    # --- reader ----------------------------------------------------------------------
    def _current(self) -> _Version:
        if self._active is None:
            raise NoActiveSnapshot("no active snapshot; publish one with `centric publish DIR`")
        return self._versions[self._active]

    async def version(self) -> str:
        """Return the active version id."""
        return self._current().version

    async def recommendations(self, customer_id: str) -> tuple[RankedList | None, dict[str, float]]:
        """Return the customer's list (or ``None``) and recent purchases."""
        v = self._current()
        recent = dict(self._recent.get(customer_id, {}))
        items = v.recs.get(customer_id)
        return (RankedList(v.version, list(items)) if items is not None else None), recent

    async def similar(self, item_id: str) -> RankedList | None:
        """Return the item's similar items or ``None``."""
        v = self._current()
        items = v.similar.get(item_id)
        return RankedList(v.version, list(items)) if items is not None else None

    async def fallback(self, name: str) -> RankedList | None:
        """Return a fallback list or ``None``."""
        v = self._current()
        frame = v.prepared.fallbacks.get(name)
        if frame is None:
            return None
        reason = fallback_reason(name)
        return RankedList(
            v.version, [RankedItem(i, float(codec.to_f16(s)), "fallback", reason) for i, s in frame.iter_rows()]
        )

    async def fallback_names(self) -> list[str]:
        """Return the fallback list names."""
        return sorted(self._current().prepared.fallbacks)

    async def profile(self, customer_id: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(version, profile)`` or ``None``."""
        v = self._current()
        row = v.profiles.get(customer_id)
        return (v.version, dict(row)) if row is not None else None

    async def items(self) -> ItemTable:
        """Return the item table."""
        return self._current().table

    async def record_purchases(self, purchases: list[tuple[str, str, float]]) -> None:
        """Remember purchases for real-time filtering."""
        for customer_id, item_id, ts in purchases:
            self._recent.setdefault(customer_id, {})[item_id] = ts

    async def get_customer_offers(self, customer_id: str) -> OfferDecisions:
        """Return the customer's offer decisions."""
        v = self._current()
        rows = v.decisions.get(customer_id, [])
        return OfferDecisions(v.version, [OfferDecision.from_row(r, customer_id) for r in rows])

    async def get_offer_catalog(self) -> OfferCatalog:
        """Return the published offer catalog."""
        v = self._current()
        return OfferCatalog(v.version, list(v.prepared.offers or []))

    async def get_offer_audience(self, offer_id: str) -> OfferDecisions:
        """Return every decision for ``offer_id``."""
        v = self._current()
        rows = [r for rs in v.decisions.values() for r in rs if r["offer_id"] == offer_id]
        return OfferDecisions(v.version, [OfferDecision.from_row(r) for r in rows])

    async def model_files(self) -> Mapping[str, bytes]:
        """Return the published recommender files."""
        return dict(self._current().prepared.model_files)

    async def dashboard(self) -> dict[str, Any]:
        """Return the version's dashboard aggregates and experiments document (``None`` when not published)."""
        v = self._current()
        return {
            "version": v.version,
            "created_at": v.created_at,
            "dashboard": v.prepared.dashboard,
            "experiments": v.prepared.experiments,
        }
