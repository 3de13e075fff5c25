"""What the dashboard shows: the snapshot's published aggregates, and live loyalty and campaign figures.

Figures over every loyalty member are computed from the ledger accounts (one pipelined HGETALL per member, in
chunks) and kept in this process for ``LIVE_TTL_S`` seconds, so a page view costs a dictionary lookup, not a scan
of the ledger. Ledger history (liability over time) reads every entry and is kept for ``HISTORY_TTL_S``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import RedisError

from recsys.analytics.tier_movements import TierMovements, TierRules, replay_customer
from recsys.clock import utcnow
from recsys.exceptions import CentricError, NoActiveSnapshot, StoreUnavailable
from recsys.loyalty.ops import decode_account, expiring_points, live_balance
from recsys.store.base import SnapshotReader
from recsys.store.keys import Fields
from serving.services import pipeline_runs
from serving.services.dashboard_cache import DashboardCache, cache_of
from serving.services.loyalty import LoyaltyService

log = logging.getLogger(__name__)
LIVE_TTL_S = 15.0
HISTORY_TTL_S = 300.0
CHUNK = 1000
HISTORY_CHUNK = 200  # ledgers whose entries are read per round trip
# Names of the cached figures; a new version of a figure's document gets a new name, so processes running an older
# release (sharing the figures in Redis) never read a document they do not know.
PREPARE_TIMEOUT_S = 10.0  # the most a start waits for the snapshot and the shared figures before serving
SUMMARY = "loyalty_summary:1"
HISTORY = "loyalty_history:2"


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


def _add_entries(
    lists: list[list[bytes]],
    flows: dict[str, dict[str, int]],
    months: dict[int, str],
    movements: TierMovements,
    rules: TierRules,
    now: datetime,
) -> None:
    # month of an entry by its UTC day (entries of a day share it; formatting a date per entry would dominate)
    for blobs in lists:
        entries = [orjson.loads(blob) for blob in blobs]
        for entry in entries:
            day = int(entry.get("at", 0)) // 86_400
            month = months.get(day)
            if month is None:
                month = months[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m")
            row = flows.setdefault(month, {})
            kind = str(entry.get("type", "other"))
            row[kind] = row.get(kind, 0) + int(entry.get("amount", 0))
        movements.add(replay_customer(entries, rules, now))


async def loyalty_history(svc: LoyaltyService, now: datetime, months: int = 24) -> dict[str, Any]:
    """Return the monthly points flow of every member: earned, redeemed, reversed, expired, and the liability at
    each month's end (the running sum of all entries), for the last ``months`` months; and the tier movements per
    month with the members per tier that the replay gives today (``recsys.analytics.tier_movements``)."""
    ids = await members(svc)
    flows: dict[str, dict[str, int]] = {}
    labels: dict[int, str] = {}
    names = [t.name for t in svc.program.tiers]
    movements, rules = TierMovements(len(names)), TierRules.of(svc.program)
    # a few hundred ledgers per round trip, each batch parsed in a thread: the event loop stays free for requests
    for start in range(0, len(ids), HISTORY_CHUNK):
        part = ids[start : start + HISTORY_CHUNK]
        lists = await _chunked(svc, part, lambda pipe, cid: pipe.lrange(svc.keys.loyalty_entries(cid), 0, -1))
        await asyncio.to_thread(_add_entries, lists, flows, labels, movements, rules, now)
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
    shown = {row["month"] for row in series[-months:]}
    return {
        "months": series[-months:],
        "tier_movements": [row for row in movements.table(names) if row["month"] in shown],
        "tiers_replayed": [{"tier": n, "members": c} for n, c in zip(names, movements.current)],
        "computed_at": now.isoformat(),
    }


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
        "experiments": found["experiments"] or [],  # a snapshot published without experiments has none
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


async def cached_summary(cache: DashboardCache, svc: LoyaltyService, now: datetime) -> dict[str, Any]:
    """``loyalty_summary`` through the cache (at most ``LIVE_TTL_S`` old, refreshed behind)."""
    return await cache.get(SUMMARY, LIVE_TTL_S, lambda: loyalty_summary(svc, now))


async def cached_history(cache: DashboardCache, svc: LoyaltyService, now: datetime) -> dict[str, Any]:
    """``loyalty_history`` through the cache (at most ``HISTORY_TTL_S`` old, refreshed behind)."""
    return await cache.get(HISTORY, HISTORY_TTL_S, lambda: loyalty_history(svc, now))


def offers_name(snap: dict[str, Any]) -> str:
    """The cached figure name of the offer table of snapshot ``snap``."""
    return f"offers:1:{snap['version']}"


def experiments_name(snap: dict[str, Any]) -> str:
    """The cached figure name of the experiment reports of snapshot ``snap``."""
    return f"experiments:1:{snap['version']}"


async def cached_campaigns(
    cache: DashboardCache, store: SnapshotReader, svc: LoyaltyService, snap: dict[str, Any], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the offer table and the experiment reports of the snapshot ``snap`` through the cache."""
    from serving.services import campaign_view

    async def offer_table() -> list[dict[str, Any]]:
        rows = await campaign_view.offer_table(store, svc, now)  # reads the catalog of the version active now
        if (await store.dashboard())["version"] != snap["version"]:
            # a publish or rollback landed meanwhile: these rows may be another version's; answer, never keep them
            await cache.forget(offers_name(snap))
        return rows

    offers = await cache.get(offers_name(snap), LIVE_TTL_S, offer_table)

    async def experiments() -> list[dict[str, Any]]:
        return await campaign_view.experiment_reports(snap["experiments"], await members(svc), svc)

    return offers, await cache.get(experiments_name(snap), LIVE_TTL_S, experiments)


async def prepare(app: Any, timeout_s: float = PREPARE_TIMEOUT_S) -> asyncio.Task[None]:
    """Warm the dashboard before the service accepts requests (the lifespan awaits this); return the warm-up task.

    The templates are compiled, the active snapshot loaded and the figures other processes shared read from Redis;
    figures found nowhere (the first start on this ledger) are computed by ``warm``, awaited too. After ``timeout_s``
    in all the service starts anyway and ``warm`` goes on in the background (the pages that need a figure still
    missing wait for it). Errors (nothing published, Redis down) are left for the pages to report.
    """
    from serving.services.loyalty import loyalty_of
    from serving.ui import render

    async def steps() -> None:
        await asyncio.to_thread(render.compile_templates)
        await loyalty_of(app)
        cache, store = cache_of(app), getattr(app.state, "store", None)
        names = [SUMMARY, HISTORY]
        if store is not None:
            try:
                snap = await snapshot_overview(store, utcnow())  # loads the active version (item table and all)
                names += [offers_name(snap), experiments_name(snap)]
            except NoActiveSnapshot:
                pass
        for name in names:
            await cache.load(name)

    started = asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(steps(), timeout_s)
    except TimeoutError:
        pass
    except (CentricError, RedisError, OSError) as exc:
        log.info("dashboard preparation stopped: %s", exc)
    task = asyncio.create_task(warm(app))
    left = timeout_s - (asyncio.get_running_loop().time() - started)
    if left > 0:
        await asyncio.wait({task}, timeout=left)
    if not task.done():
        log.warning("dashboard warm-up takes over %.0f s; serving already, it goes on in the background", timeout_s)
    return task


async def warm(app: Any) -> None:
    """Compute each figure found nowhere, neither in this process nor shared in Redis (``prepare`` runs it).

    A restart never scans the ledger before its first pages; a figure found stale is refreshed behind the page that
    next reads it. Errors are left for the pages to report (nothing published yet, Redis down): warming is only a
    head start.
    """
    from serving.services.loyalty import loyalty_of

    try:
        svc = await loyalty_of(app)
        cache, now = cache_of(app), utcnow()

        async def need(name: str) -> bool:
            return name not in cache.entries and await cache.load(name) is None

        if await need(SUMMARY):
            await cached_summary(cache, svc, now)
        store = getattr(app.state, "store", None)
        if store is not None:
            try:
                snap = await snapshot_overview(store, now)
            except NoActiveSnapshot:
                snap = None
            if snap is not None and (await need(offers_name(snap)) or await need(experiments_name(snap))):
                await cached_campaigns(cache, store, svc, snap, now)
        if await need(HISTORY):
            await cached_history(cache, svc, now)
    except (CentricError, RedisError, OSError) as exc:
        log.info("dashboard warm-up stopped: %s", exc)
    except Exception:
        # a head start must never take the service down; the page that needs the figure will show the error
        log.exception("dashboard warm-up failed")
