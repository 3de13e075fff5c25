"""What the dashboard shows: the snapshot's published aggregates, and live loyalty and campaign figures.

Figures over every loyalty member are computed from the ledger accounts (one pipelined HGETALL per member, in
chunks) and kept in this process for ``LIVE_TTL_S`` seconds, so a page view costs a dictionary lookup, not a scan
of the ledger. Ledger history (liability over time) reads every entry and is kept for ``HISTORY_TTL_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import RedisError

from recsys.clock import utcnow
from recsys.exceptions import CentricError, NoActiveSnapshot, StoreUnavailable
from recsys.loyalty.ops import decode_account, expiring_points, live_balance
from recsys.store.base import SnapshotReader
from recsys.store.keys import Fields
from serving.services import pipeline_runs
from serving.services.loyalty import LoyaltyService

log = logging.getLogger(__name__)
LIVE_TTL_S = 15.0
HISTORY_TTL_S = 300.0
CHUNK = 1000
HISTORY_CHUNK = 200  # ledgers whose entries are read per round trip


@dataclass
class _Cached:
    value: Any
    at: float


@dataclass
class DashboardCache:
    """Per-process cache of computed figures: name → (value, monotonic time); one computation at a time per name.

    A value older than its TTL is still answered at once while one background task recomputes it (stale while
    revalidate), so a page never waits for a scan of the ledger once the figure exists; a value older than
    ``MAX_STALE_S`` is recomputed before answering. Pages show when each figure was computed.
    """

    entries: dict[str, _Cached] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    refreshing: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    MAX_STALE_S = 3600.0

    async def _compute(self, name: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        value = await compute()
        self.entries[name] = _Cached(value, time.monotonic())
        return value

    async def get(self, name: str, ttl_s: float, compute: Callable[[], Awaitable[Any]]) -> Any:
        """Return the value of ``name``: cached if younger than ``ttl_s``, stale (refreshed behind) if younger than
        ``MAX_STALE_S``, else computed now."""
        hit = self.entries.get(name)
        if hit is not None:
            age = time.monotonic() - hit.at
            if age < ttl_s:
                return hit.value
            if age < max(self.MAX_STALE_S, ttl_s):
                task = self.refreshing.get(name)
                if task is None or task.done():
                    self.refreshing[name] = asyncio.create_task(self._locked(name, compute))
                return hit.value
        return await self._locked(name, compute, ttl_s)

    async def _locked(self, name: str, compute: Callable[[], Awaitable[Any]], ttl_s: float | None = None) -> Any:
        lock = self.locks.setdefault(name, asyncio.Lock())
        async with lock:
            hit = self.entries.get(name)
            if ttl_s is not None and hit is not None and time.monotonic() - hit.at < ttl_s:
                return hit.value  # computed by the request that held the lock
            return await self._compute(name, compute)

    def forget(self, name: str) -> None:
        """Drop ``name`` so that the next read computes it (after a change this process made)."""
        self.entries.pop(name, None)


async def members(svc: LoyaltyService) -> list[str]:
    """Return every customer id with a loyalty ledger, sorted."""
    out: list[str] = []
    try:
        async for member in svc.redis.sscan_iter(svc.keys.loyalty_customers(), count=5000):
            out.append(member.decode() if isinstance(member, bytes) else str(member))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read the loyalty member index: {exc}") from exc
    return sorted(out)


async def _chunked(svc: LoyaltyService, ids: list[str], command: Callable[[Any, str], None]) -> list[Any]:
    answers: list[Any] = []
    try:
        for start in range(0, len(ids), CHUNK):
            pipe = svc.redis.pipeline(transaction=False)
            for cid in ids[start : start + CHUNK]:
                command(pipe, cid)
            answers.extend(await pipe.execute())
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read loyalty accounts: {exc}") from exc
    return answers


def point_value(svc: LoyaltyService, points: int) -> Decimal:
    """Return what ``points`` are worth in currency units under the program's point value."""
    return (Decimal(points) * svc.program.point_value_cents / 100).quantize(Decimal("0.01"))


def _summarize_accounts(raw: list[Any], tiers: int, now: datetime) -> tuple[list[int], int, int, int]:
    per_tier = [0] * tiers
    liability = expiring = debt = 0
    for account in raw:
        acct = decode_account(account or {})
        per_tier[min(acct["tier"], tiers - 1)] += 1
        liability += live_balance(acct, now)  # the same rules as each customer's standing
        expiring += expiring_points(acct, now, 30)
        debt += acct["debt"]
    return per_tier, liability, expiring, debt


async def loyalty_summary(svc: LoyaltyService, now: datetime) -> dict[str, Any]:
    """Return members per tier, the points liability (points and value) and points expiring within 30 days."""
    ids = await members(svc)
    raw = await _chunked(svc, ids, lambda pipe, cid: pipe.hgetall(svc.keys.loyalty_account(cid)))
    tiers = svc.program.tiers
    # decoding every account is CPU work: off the event loop, so pages keep being served meanwhile
    per_tier, liability, expiring, debt = await asyncio.to_thread(_summarize_accounts, raw, len(tiers), now)
    return {
        "members": len(ids),
        "tiers": [{"tier": t.name, "members": n} for t, n in zip(tiers, per_tier)],
        "liability_points": liability,
        "liability_value": float(point_value(svc, liability)),
        "expiring_30d_points": expiring,
        "expiring_30d_value": float(point_value(svc, expiring)),
        "debt_points": debt,
        "computed_at": now.isoformat(),
    }


def _add_entries(lists: list[list[bytes]], flows: dict[str, dict[str, int]], months: dict[int, str]) -> None:
    # month of an entry by its UTC day (entries of a day share it; formatting a date per entry would dominate)
    for entries in lists:
        for blob in entries:
            entry = orjson.loads(blob)
            day = int(entry.get("at", 0)) // 86_400
            month = months.get(day)
            if month is None:
                month = months[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m")
            row = flows.setdefault(month, {})
            kind = str(entry.get("type", "other"))
            row[kind] = row.get(kind, 0) + int(entry.get("amount", 0))


async def loyalty_history(svc: LoyaltyService, now: datetime, months: int = 24) -> dict[str, Any]:
    """Return the monthly points flow of every member: earned, redeemed, reversed, expired, and the liability at
    each month's end (the running sum of all entries), for the last ``months`` months."""
    ids = await members(svc)
    flows: dict[str, dict[str, int]] = {}
    labels: dict[int, str] = {}
    # a few hundred ledgers per round trip, each batch parsed in a thread: the event loop stays free for requests
    for start in range(0, len(ids), HISTORY_CHUNK):
        part = ids[start : start + HISTORY_CHUNK]
        lists = await _chunked(svc, part, lambda pipe, cid: pipe.lrange(svc.keys.loyalty_entries(cid), 0, -1))
        await asyncio.to_thread(_add_entries, lists, flows, labels)
    series = []
    running = 0
    for month in sorted(flows):
        row = flows[month]
        running += sum(row.values())
        series.append(
            {
                "month": month,
                "earned": row.get("earn", 0) + row.get("grant", 0),
                "redeemed": -row.get("redeem", 0),
                "reversed": -row.get("reverse", 0),
                "expired": -row.get("expire", 0),
                "liability_points": running,
            }
        )
    return {"months": series[-months:], "computed_at": now.isoformat()}


async def snapshot_overview(store: SnapshotReader, now: datetime) -> dict[str, Any]:
    """Return the active snapshot's version, age and published aggregates (``dashboard`` is None if not published).

    Raises ``NoActiveSnapshot`` when nothing is published.
    """
    found = await store.dashboard()
    created: datetime = found["created_at"]
    return {
        "version": found["version"],
        "published_at": created.isoformat(),
        "age_hours": round((now - created).total_seconds() / 3600, 1),
        "dashboard": found["dashboard"],
        "experiments": found["experiments"],
    }


async def overview(
    store: SnapshotReader,
    loyalty: LoyaltyService | None,
    cache: DashboardCache,
    now: datetime,
    pipeline_dir: Path | None = None,
) -> dict[str, Any]:
    """Return the overview document: snapshot aggregates, loyalty summary, and the last pipeline runs (newest first,
    from the run reports under ``pipeline_dir``).

    A missing snapshot is reported as ``snapshot: None`` rather than an error, so the page can say what to do.
    """
    try:
        snap = await snapshot_overview(store, now)
    except NoActiveSnapshot:
        snap = None
    summary = None
    if loyalty is not None:
        summary = await cached_summary(cache, loyalty, now)
    runs = await pipeline_runs.last_runs(pipeline_dir) if pipeline_dir is not None else []
    return {"snapshot": snap, "loyalty": summary, "runs": runs}


async def evaluation_history(redis: Any, keys: Any, limit: int = 10) -> list[dict[str, Any]]:
    """Return ``[{"version", "published_at", "evaluation", "holdout"}]`` of the kept snapshots, oldest first."""
    try:
        kept = await redis.zrange(keys.snapshot_versions(), -limit, -1, withscores=True)
        names = [v.decode() if isinstance(v, bytes) else str(v) for v, _ in kept]
        blobs = await redis.mget([keys.snapshot_table(v, Fields.DASHBOARD_TABLE) for v in names]) if names else []
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read the published versions: {exc}") from exc
    out = []
    for (_, score), name, blob in zip(kept, names, blobs):
        doc = orjson.loads(blob) if blob else {}
        out.append(
            {
                "version": name,
                "published_at": datetime.fromtimestamp(float(score), UTC).isoformat(),
                "evaluation": doc.get("evaluation"),
                "holdout": doc.get("holdout"),
            }
        )
    return out


async def rewards(svc: LoyaltyService) -> list[dict[str, Any]]:
    """Return each reward of the program with its cost, stock left and units redeemed (program stock − stock left)."""
    items = list(svc.program.rewards.values())
    try:
        pipe = svc.redis.pipeline(transaction=False)
        for reward in items:
            pipe.hget(svc.keys.loyalty_stock(reward.id), Fields.STOCK)
        stocks = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read reward stock: {exc}") from exc
    out = []
    for reward, left in zip(items, stocks):
        stock = reward.stock if left is None else int(left)
        out.append(
            {
                "reward_id": reward.id,
                "name": reward.name,
                "cost": reward.cost,
                "tiers": list(reward.tiers),
                "stock": stock,
                "redeemed": max(reward.stock - stock, 0),
            }
        )
    return out


def pipeline_dir_of(settings: Any) -> Path:
    """Return where `centric pipeline` keeps its run reports for these settings (``pipeline_dir`` or HOME/pipeline)."""
    return Path(settings.pipeline_dir or Path(settings.home) / "pipeline")


def cache_of(app: Any) -> DashboardCache:
    """Return the app's dashboard cache (made on first use; shared by the API and the web UI)."""
    cache = getattr(app.state, "dashboard_cache", None)
    if cache is None:
        cache = app.state.dashboard_cache = DashboardCache()
    return cache


async def cached_summary(cache: DashboardCache, svc: LoyaltyService, now: datetime) -> dict[str, Any]:
    """``loyalty_summary`` through the cache (at most ``LIVE_TTL_S`` old, refreshed behind)."""
    return await cache.get("loyalty_summary", LIVE_TTL_S, lambda: loyalty_summary(svc, now))


async def cached_history(cache: DashboardCache, svc: LoyaltyService, now: datetime) -> dict[str, Any]:
    """``loyalty_history`` through the cache (at most ``HISTORY_TTL_S`` old, refreshed behind)."""
    return await cache.get("loyalty_history", HISTORY_TTL_S, lambda: loyalty_history(svc, now))


async def cached_campaigns(
    cache: DashboardCache, store: SnapshotReader, svc: LoyaltyService, snap: dict[str, Any], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the offer table and the experiment reports of the snapshot ``snap`` through the cache."""
    from serving.services import campaign_view

    version = snap["version"]
    offers = await cache.get(f"offers:{version}", LIVE_TTL_S, lambda: campaign_view.offer_table(store, svc, now))

    async def experiments() -> list[dict[str, Any]]:
        return await campaign_view.experiment_reports(snap["experiments"], await members(svc), svc)

    return offers, await cache.get(f"experiments:{version}", LIVE_TTL_S, experiments)


async def warm(app: Any) -> None:
    """Compute every cached figure once (run in the background at startup, so first page loads find them).

    Errors are left for the pages to report (nothing published yet, Redis down): warming is only a head start.
    """
    from serving.services.loyalty import loyalty_of

    try:
        svc = await loyalty_of(app)
        cache, now = cache_of(app), utcnow()
        await cached_summary(cache, svc, now)
        store = getattr(app.state, "store", None)
        if store is not None:
            try:
                snap = await snapshot_overview(store, now)
            except NoActiveSnapshot:
                snap = None
            if snap is not None:
                await cached_campaigns(cache, store, svc, snap, now)
        await cached_history(cache, svc, now)
    except (CentricError, RedisError, OSError) as exc:
        log.info("dashboard warm-up stopped: %s", exc)
    except Exception:
        # a head start must never take the service down; the page that needs the figure will show the error
        log.exception("dashboard warm-up failed")
