"""Similar items and basket cross-sell, from the active snapshot's similar-item lists."""

from __future__ import annotations

import asyncio
from typing import Any

from recsys.exceptions import UnknownItem
from recsys.store.base import RankedItem, SnapshotReader
from serving.services.foldin import FoldIn
from serving.services.recommendations import fallback_items, item_dict, keep_item


async def similar(store: SnapshotReader, item_id: str, *, k: int) -> dict[str, Any]:
    """Return ``{"item_id", "version", "items"}``: similar items in stock, topped up from the item's category.

    Raises ``UnknownItem`` when the active snapshot does not know ``item_id``.
    """
    table = await store.items()
    info = table.get(item_id)
    if info is None:
        raise UnknownItem(
            f"item {item_id!r} is not in the active snapshot's catalog; check the id (items come from items.parquet "
            f"and the model)"
        )
    ranked = await store.similar(item_id)
    version = ranked.version if ranked is not None else await store.version()
    exclude = {item_id}
    kept = [i for i in (ranked.items if ranked else []) if keep_item(table, i.item_id, exclude, None)][:k]
    if len(kept) < k:
        _name, extra = await fallback_items(store, info.category)
        seen = {i.item_id for i in kept} | exclude
        kept += [i for i in extra if i.item_id not in seen and keep_item(table, i.item_id, exclude, None)][
            : k - len(kept)
        ]
    return {"item_id": item_id, "version": version, "items": [item_dict(i) for i in kept]}


async def basket(
    store: SnapshotReader,
    item_ids: list[str],
    *,
    k: int,
    customer_id: str | None = None,
    exclude: list[str] | None = None,
    foldin: FoldIn | None = None,
) -> dict[str, Any]:
    """Return cross-sell items for a cart: similar items of every cart item, scores summed, cart items excluded.

    Unknown cart items are ignored; when nothing similar is known the cart is folded in (if a model is
    published) or popular items are returned.
    """
    table = await store.items()
    blocked = set(item_ids) | set(exclude or ())
    lists = await asyncio.gather(*(store.similar(i) for i in dict.fromkeys(item_ids)))
    version = next((r.version for r in lists if r is not None), None) or await store.version()
    scores: dict[str, float] = {}
    because: dict[str, str] = {}
    for source_id, ranked in zip(dict.fromkeys(item_ids), lists):
        for item in ranked.items if ranked else []:
            if item.item_id in blocked:
                continue
            scores[item.item_id] = scores.get(item.item_id, 0.0) + item.score
            because.setdefault(item.item_id, source_id)
    ordered = sorted(scores, key=lambda i: -scores[i])
    items: list[RankedItem] = []
    for item_id in ordered:
        if keep_item(table, item_id, blocked, None):
            name = table.get(because[item_id])
            label = name.name if name is not None and name.name else because[item_id]
            items.append(RankedItem(item_id, round(scores[item_id], 6), "cross_sell", f"often bought with {label}"))
        if len(items) >= k:
            break
    if len(items) < k and foldin is not None:
        folded = await foldin.recommend(store, item_ids, k + len(blocked), blocked)
        seen = {i.item_id for i in items}
        for item_id, score in folded or []:
            if len(items) >= k:
                break
            if item_id not in seen and keep_item(table, item_id, blocked, None):
                items.append(RankedItem(item_id, float(score), "personalized", "fits the rest of your basket"))
                seen.add(item_id)
    if len(items) < k:
        _name, extra = await fallback_items(store, None)
        seen = {i.item_id for i in items}
        items += [i for i in extra if i.item_id not in seen and keep_item(table, i.item_id, blocked, None)][
            : k - len(items)
        ]
    return {
        "customer_id": customer_id,
        "basket": list(item_ids),
        "version": version,
        "items": [item_dict(i) for i in items],
    }
