"""Typed dependencies: the clients and settings made in the app's lifespan (swap them with ``dependency_overrides``).

All are ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, which costs far more than they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from recsys.exceptions import NoActiveSnapshot
from recsys.nba.exploration import Explorer
from recsys.settings import Settings
from recsys.store.base import SnapshotReader
from recsys.store.keys import Keys
from serving.metrics import Metrics
from serving.services.foldin import FoldIn


async def get_redis(request: Request) -> aioredis.Redis:
    """Return the app's ``redis.asyncio`` client (created in the lifespan)."""
    return request.app.state.redis


async def get_keys(request: Request) -> Keys:
    """Return the app's key builder (``Keys(settings.env)``)."""
    return request.app.state.keys


async def get_settings(request: Request) -> Settings:
    """Return the settings the app was built with."""
    return request.app.state.settings


async def get_explorer(request: Request) -> Explorer:
    """Return the app's offer explorer (per-channel policies and seeded generator), made from its settings once
    (``create_app`` makes it, so a bad configuration fails at start)."""
    state = request.app.state
    explorer = getattr(state, "explorer", None)
    if explorer is None:
        settings = state.settings
        explorer = state.explorer = Explorer.from_config(settings.exploration, settings.exploration_seed)
    return explorer


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
KeysDep = Annotated[Keys, Depends(get_keys)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ExplorerDep = Annotated[Explorer, Depends(get_explorer)]


async def get_store(request: Request) -> SnapshotReader:
    """Return the snapshot reader made in the lifespan (``app.state.store``)."""
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise NoActiveSnapshot("the snapshot store is not set up; is the app's lifespan running?")
    return store


@dataclass(frozen=True)
class Serving:
    """What the read endpoints need, resolved as one dependency (each FastAPI dependency costs per request)."""

    store: SnapshotReader
    foldin: FoldIn | None
    metrics: Metrics


async def get_serving(request: Request) -> Serving:
    """Return the store, fold-in cache and metrics of this app (``app.state``)."""
    state = request.app.state
    store = getattr(state, "store", None)
    if store is None:
        raise NoActiveSnapshot("the snapshot store is not set up; is the app's lifespan running?")
    return Serving(store, getattr(state, "foldin", None), state.metrics)


StoreDep = Annotated[SnapshotReader, Depends(get_store)]
ServingDep = Annotated[Serving, Depends(get_serving)]
