"""Fold-in: recommendations for a customer the snapshot does not know, from their fresh purchases.

The recommender artifact published with the version (``recommender/<model>.npz|json``) is loaded once
per version and process, and ``recommend_from_items`` (implicit's ``recalculate_user``) runs in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from recsys.exceptions import CentricError
from recsys.store.base import SnapshotReader

log = logging.getLogger(__name__)


def _load(files: dict[str, bytes]) -> Any | None:
    try:
        from recsys.models import load_recommender
    except ImportError:
        return None
    manifests = sorted(n for n in files if n.endswith(".json") and n[:-5] + ".npz" in files)
    if not manifests:
        return None
    with tempfile.TemporaryDirectory(prefix="centric-model-") as tmp:
        for name, blob in files.items():
            (Path(tmp) / Path(name).name).write_bytes(blob)
        for manifest in manifests:
            try:
                model = load_recommender(Path(tmp) / Path(manifest).name)
            except (CentricError, ValueError, OSError) as exc:
                log.warning("cannot load published recommender %s: %s", manifest, exc)
                continue
            if hasattr(model, "recommend_from_items"):
                return model
    return None


class FoldIn:
    """Per-process cache of the active version's fold-in model."""

    def __init__(self) -> None:
        self._version: str | None = None
        self._model: Any | None = None
        self._lock = asyncio.Lock()

    async def model(self, store: SnapshotReader) -> Any | None:
        """Return the fold-in model of the active version, or ``None`` when it has none."""
        version = await store.version()
        if self._version == version:
            return self._model
        async with self._lock:
            if self._version != version:
                files = dict(await store.model_files())
                self._model = await run_in_threadpool(_load, files) if files else None
                self._version = version
        return self._model

    async def recommend(
        self, store: SnapshotReader, item_ids: Sequence[str], k: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]] | None:
        """Return ``[(item_id, score)]`` for these purchases, or ``None`` when no fold-in model is published."""
        model = await self.model(store)
        if model is None:
            return None
        return await run_in_threadpool(model.recommend_from_items, list(item_ids), k, list(exclude))
