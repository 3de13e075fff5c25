"""``POST /v1/events``: batched events (write scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.auth import require_scope
from serving.deps import KeysDep, RedisDep, SettingsDep, StoreDep
from serving.params import OptionalIdempotencyKey
from serving.routing import StrictQueryRoute
from serving.schemas.common import ErrorPublic
from serving.schemas.events import EventsAccepted, EventsCreate
from serving.services import events as service

router = APIRouter(
    prefix="/v1",
    route_class=StrictQueryRoute,
    tags=["events"],
    responses={
        401: {"model": ErrorPublic},
        403: {"model": ErrorPublic},
        409: {"model": ErrorPublic},
        422: {"model": ErrorPublic},
        503: {"model": ErrorPublic},
    },
)


@router.post("/events", response_model=EventsAccepted, status_code=202, dependencies=[Depends(require_scope("write"))])
async def post_events(
    redis: RedisDep,
    keys: KeysDep,
    store: StoreDep,
    settings: SettingsDep,
    batch: EventsCreate,
    key: OptionalIdempotencyKey = None,
) -> EventsAccepted:
    """Append up to 1000 events to the event stream; purchases take effect on recommendations at once."""
    events = [e.model_dump() for e in batch.events]
    accepted = await service.record_events(redis, keys, store, events, key, settings.events_backlog_limit)
    return EventsAccepted(accepted=accepted)
