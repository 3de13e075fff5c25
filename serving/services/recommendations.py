"""Recommendations for a customer: the published list, adjusted in real time, or a fallback.

Real-time rules, applied at read time to the list published in the active snapshot:
- items bought since the snapshot are dropped, unless their category is a repeat category: then they
  are kept (or added) as ``buy_again``;
- out-of-stock items and the caller's ``exclude`` ids are dropped; ``category`` keeps one category;
- a customer without a published list but with fresh purchases is folded in from the item factors;
- anyone else gets a fallback list (``category:<c>`` when a category is asked for, then ``trending``,
  then ``popular``, chained); short lists are topped up from the same fallbacks.
When Redis is unreachable, the fallback lists held in memory are served with ``degraded: true``.
"""

from __future__ import annotations

from typing import Any

from recsys.exceptions import StoreUnavailable
from recsys.store.base import ItemTable, RankedItem, SnapshotReader
from recsys.store.keys import Fields
from serving.metrics import Metrics
from serving.schemas.recommendations import RecommendationsQuery
from serving.services.foldin import FoldIn

FALLBACK_ORDER = (Fields.FALLBACK_TRENDING, Fields.FALLBACK_POPULAR)


def item_dict(item: RankedItem) -> dict[str, Any]:
    """Return the public shape of one item."""
    return {"item_id": item.item_id, "score": item.score, "source": item.source, "reason": item.reason}


def keep_item(table: ItemTable, item_id: str, exclude: set[str], category: str | None) -> bool:
    """Return whether an item may be shown: known or not, in stock, not excluded, of the asked category."""
    if item_id in exclude:
        return False
    i = table.index.get(item_id)
    if i is None:
        return category is None
    if not table.in_stock[i]:
        return False
    return category is None or table.categories[i] == category


async def fallback_items(store: SnapshotReader, category: str | None) -> tuple[str, list[RankedItem]]:
    """Return the fallback chain for an optional category: ``category:<c>``, then trending, then popular, deduplicated.

    The name is the first list that contributed (``"none"`` when the version has no fallback lists).
    """
    names = ([Fields.category_fallback(category)] if category else []) + list(FALLBACK_ORDER)
    first, items, seen = "none", [], set()
    for name in names:
        ranked = await store.fallback(name)
        if ranked is None:
            continue
        for item in ranked.items:
            if item.item_id not in seen:
                seen.add(item.item_id)
                items.append(item)
        if items and first == "none":
            first = name
    return first, items


def repeats(table: ItemTable, item_id: str) -> bool:
    """Return whether the item is in a repeat category (bought again and again, e.g. milk)."""
    i = table.index.get(item_id)
    return i is not None and bool(table.repeat[i])


def apply_recent(items: list[RankedItem], recent: dict[str, float], table: ItemTable, k: int) -> list[RankedItem]:
    """Drop items bought since the snapshot unless their category repeats; those become ``buy_again``."""
    if not recent:
        return items
    out: list[RankedItem] = []
    for item in items:
        if item.item_id not in recent:
            out.append(item)
            continue
        info = table.get(item.item_id)
        if info is not None and info.repeat_category:
            out.append(
                RankedItem(
                    item.item_id, item.score, "buy_again", f"you bought it recently and buy {info.category} regularly"
                )
            )
    listed = {i.item_id for i in out}
    # Fresh repeat-category purchases not yet listed join the buy-again part of the visible list.
    fresh = sorted((ts, item_id) for item_id, ts in recent.items() if item_id not in listed)
    additions = []
    for _ts, item_id in reversed(fresh):
        info = table.get(item_id)
        if info is not None and info.repeat_category:
            additions.append(
                RankedItem(item_id, 0.0, "buy_again", f"you bought it recently and buy {info.category} regularly")
            )
    if additions:
        at = max(0, min(len(out), k) - len(additions))
        out[at:at] = additions
    return out


async def recommend(
    store: SnapshotReader,
    customer_id: str,
    *,
    k: int,
    category: str | None = None,
    exclude: set[str] | None = None,
    channel: str | None = None,
    foldin: FoldIn | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Return ``{"customer_id", "version", "items", "channel", "degraded"}`` with at most ``k`` items.

    Raises ``NoActiveSnapshot`` when nothing is published; ``StoreUnavailable`` only when Redis is down
    and no version was ever loaded by this process.
    """
    exclude = exclude or set()
    try:
        ranked, recent = await store.recommendations(customer_id)
    except StoreUnavailable:
        name, cached = await fallback_items(store, category)
        if metrics:
            metrics.fallbacks.labels(reason="store_unavailable").inc()
        table = await store.items()
        kept = [
            RankedItem(i.item_id, i.score, "fallback", f"{i.reason} (live data unavailable)")
            for i in cached
            if keep_item(table, i.item_id, exclude, category)
        ][:k]
        return {
            "customer_id": customer_id,
            "version": await store.version(),
            "items": [item_dict(i) for i in kept],
            "channel": channel,
            "degraded": True,
        }
    table = await store.items()
    version = ranked.version if ranked is not None else await store.version()
    items: list[RankedItem] = []
    if ranked is not None:
        items = apply_recent(ranked.items, recent, table, k)
    elif recent and foldin is not None:
        folded = await foldin.recommend(store, list(recent), k + len(exclude), exclude)
        if folded:
            if metrics:
                metrics.foldins.inc()
            reason = f"based on your {len(recent)} recent purchase{'s' if len(recent) > 1 else ''}"
            items = apply_recent([RankedItem(i, float(s), "personalized", reason) for i, s in folded], recent, table, k)
    kept = [i for i in items if keep_item(table, i.item_id, exclude, category)][:k]
    if len(kept) < k:
        name, extra = await fallback_items(store, category)
        if metrics and not kept:
            metrics.fallbacks.labels(reason="unknown_customer" if ranked is None else "filtered").inc()
        seen = {i.item_id for i in kept}
        for item in extra:
            if len(kept) >= k:
                break
            bought_once = item.item_id in recent and not repeats(table, item.item_id)
            if item.item_id not in seen and not bought_once and keep_item(table, item.item_id, exclude, category):
                kept.append(item)
                seen.add(item.item_id)
    return {
        "customer_id": customer_id,
        "version": version,
        "items": [item_dict(i) for i in kept],
        "channel": channel,
        "degraded": False,
    }


async def recommend_query(
    store: SnapshotReader,
    customer_id: str,
    query: RecommendationsQuery,
    *,
    foldin: FoldIn | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """``recommend`` for the query of ``GET /v1/customers/{customer_id}/recommendations`` (``exclude``: ids
    separated by commas). The route and the hot read path both answer with it. Raises as ``recommend``."""
    excluded = {part for part in query.exclude.split(",") if part} if query.exclude else set()
    return await recommend(
        store,
        customer_id,
        k=query.k,
        category=query.category,
        exclude=excluded,
        channel=query.channel,
        foldin=foldin,
        metrics=metrics,
    )
